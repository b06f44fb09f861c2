"""common.timing: interleaved medians, and CUDA-graph replay that removes the host's launch overhead (issue 22
item 5). The CPU tests fix the contract (per-call time, no graph); the GPU ones check that replay really reruns the
captured kernels, that a variant that cannot be captured falls back to per-call timing, and that the graph time of
a launch-bound call is below its per-call time."""
import time

import pytest
import torch

from common.timing import cuda_graph_replay, graph_and_call_times, interleaved_times

requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_interleaved_medians_order_a_slow_and_a_fast_variant():
    times = interleaved_times({"slow": lambda: time.sleep(0.004), "fast": lambda: None}, "cpu", rounds=5, warmup=1)
    assert times["slow"] >= 0.004 > times["fast"]


def test_cpu_has_no_graph_and_both_times_are_the_per_call_time():
    calls = []
    assert cuda_graph_replay(lambda: calls.append(1), "cpu") is None and calls == []  # nothing is run for nothing
    result = graph_and_call_times({"sleep": lambda: time.sleep(0.003)}, "cpu", rounds=3, warmup=1, calls=2)
    entry = result["sleep"]
    assert entry["timing"] == "per-call" and entry["seconds"] == entry["seconds_per_call"]
    assert 0.003 <= entry["seconds_per_call"] < 0.05  # divided by calls: one sleep, not two


def test_kernel_rows_carry_both_times_on_the_cpu():
    from benchmarks import kernels

    ceilings = {"copy_GBps": 1.0}
    rows = kernels.time_case(torch.device("cpu"), 64, 4, "float32", False, ceilings, 2, triton_ok=False)
    timed_rows = [r for r in rows if "seconds" in r]
    assert {r["method"] for r in timed_rows} >= {"dense", "torch", "fft"}
    for r in timed_rows:
        assert r["timing"] == "per-call" and r["seconds"] == r["seconds_per_call"] > 0
    assert "ms per call" in kernels.kernel_table(rows)


@pytest.mark.gpu
@requires_cuda
def test_replay_reruns_the_captured_kernels():
    y = torch.zeros(1000, device="cuda")
    replay = cuda_graph_replay(lambda: y.add_(1.0), "cuda", calls=3, warmup=2)
    assert replay is not None
    torch.cuda.synchronize()
    before = y[0].item()  # 2 warm-up calls (capture itself runs nothing)
    replay()
    replay()
    torch.cuda.synchronize()
    assert y[0].item() == before + 6


@pytest.mark.gpu
@requires_cuda
def test_uncapturable_variant_falls_back_to_per_call_and_the_stream_stays_usable():
    x = torch.randn(256, device="cuda")
    result = graph_and_call_times({"syncs": lambda: x.sum().item(), "plain": lambda: x * 2}, "cuda", rounds=3,
                                  warmup=1, calls=2)
    assert result["syncs"]["timing"] == "per-call" and result["plain"]["timing"] == "cuda-graph"
    assert torch.isfinite((x * 2).sum())  # a failed capture must not leave the device in capture mode


@pytest.mark.gpu
@requires_cuda
def test_graph_time_of_a_launch_bound_call_is_below_its_per_call_time():
    x = torch.randn(64, device="cuda")

    def many_small_kernels():  # 50 launches of almost no work: host overhead is nearly all of the time
        y = x
        for _ in range(50):
            y = y * 1.0001
        return y

    entry = graph_and_call_times({"small": many_small_kernels}, "cuda", rounds=10, warmup=2, calls=5)["small"]
    assert entry["timing"] == "cuda-graph"
    assert entry["seconds"] < entry["seconds_per_call"]
