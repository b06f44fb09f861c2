"""Timing of variants side by side: interleaved round by round, medians, CUDA-synchronised; on CUDA
optionally through CUDA-graph replay, which takes the Python launch overhead (80-120 us per Monarch call
against 31-62 us of kernel time) out of what is measured."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _synchronizer(device) -> Callable[[], None]:
    device = torch.device(device)
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def median_time(fn: Callable[[], object], device="cpu", repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of fn() in seconds."""
    return interleaved_times({"fn": fn}, device, repeats, warmup)["fn"]


def interleaved_times(variants: dict[str, Callable[[], object]], device="cpu", rounds: int = 20,
                      warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each variant, timed round by round (A, B, C, A, B, C, …) so that a
    change of machine load or clock during the run hits every variant alike."""
    sync = _synchronizer(device)
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}


def cuda_graph_replay(fn: Callable[[], object], device, calls: int = 1, warmup: int = 3
                      ) -> Callable[[], None] | None:
    """A callable that replays `calls` back-to-back calls of fn captured in one CUDA graph, or None where
    no graph can hold fn (not CUDA, or fn synchronises with the host, allocates pinned memory, …).

    fn is first run `warmup` times on a side stream, as capture requires: that is also where Triton
    compiles and where monarch_core.self_check verifies a kernel configuration against the PyTorch path
    (a verification syncs with the host and could not be captured). Replay reruns the captured kernels on
    the captured tensors, so fn must read and write the same tensors on every call (true of every
    benchmark variant: its inputs are bound once)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    torch.cuda.synchronize(device)
    graph = torch.cuda.CUDAGraph()
    try:
        with torch.cuda.graph(graph):
            for _ in range(calls):
                fn()
    except Exception:  # what a graph cannot hold is timed per call instead (the caller says which)
        torch.cuda.synchronize(device)
        return None
    return graph.replay


def graph_and_call_times(variants: dict[str, Callable[[], object]], device="cpu", rounds: int = 20,
                         warmup: int = 3, calls: int = 5) -> dict[str, dict]:
    """{name: {"seconds", "seconds_per_call", "timing"}} per variant, both interleaved round by round.

    seconds_per_call: median over rounds of `calls` back-to-back calls from Python, divided by `calls`
    (what a user's loop sees, host overhead included). seconds: the same through CUDA-graph replay
    (the device's time) where the variant can be captured, timing "cuda-graph"; else it equals
    seconds_per_call, timing "per-call" (always so on the CPU, where there is no launch overhead to
    remove)."""
    def repeated(fn):
        def run():
            for _ in range(calls):
                fn()
        return run

    per_call = interleaved_times({name: repeated(fn) for name, fn in variants.items()}, device, rounds, warmup)
    replays = {name: cuda_graph_replay(fn, device, calls) for name, fn in variants.items()}
    graphed = {name: replay for name, replay in replays.items() if replay is not None}
    replayed = interleaved_times(graphed, device, rounds, warmup) if graphed else {}
    return {name: {"seconds": replayed.get(name, per_call[name]) / calls,
                   "seconds_per_call": per_call[name] / calls,
                   "timing": "cuda-graph" if name in replayed else "per-call"} for name in variants}
