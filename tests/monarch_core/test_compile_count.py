"""How many distinct Triton compiles the prepared GPU run needs (`run.py bench gpu` with `pytest -m gpu` inside).

A Triton kernel is compiled once per (kernel, constexpr config, launch options, pointer dtypes and 16-byte
alignment, integer specialisation: == 1 / divisible by 16 / i32 / i64); every later call with the same key
hits the in-process or on-disk cache (~ms). On the GPU machine a compile takes 0.5–1.1 s (Triton 3.6,
sm_90, measured on the CPU), so the count decides whether the run fits its budget.

The count walks the real launchers on meta tensors (shapes only) with the three kernels replaced by
recorders, the launch-time device query (`support.gpu_sm_count`) answering 132 SMs (an H200), and the
support check answering "supported": the tiles, grids, program counts and autotune configs are the ones a
GPU call would pick. Walked: every bench section that reaches the kernels (sanitizer cases, kernels,
kernels_tuned with autotuning on, dft) at the FULL sizes and the calls of every `gpu`-marked test (fast
test), plus one training step of every transform kind of fno_steps / mri_steps (slow test: FNO, its NS
rollout, unrolled and MoDL MRI; measured 0 compiles of their own since 2026-12-04: the MRI networks' 64-point
Monarch transforms are materialised inside `reused_matrices`, and the rest reuse keys the bench sections
compile; before, 8). ns_generation launches no Triton kernel.
"""
import ast
import inspect
from pathlib import Path

import pytest
import torch

pytest.importorskip("triton")

from benchmarks import gpu, kernels as bench_kernels, sanitize_cases  # noqa: E402
from monarch_core import self_check  # noqa: E402
from monarch_core.dft import dft_monarch  # noqa: E402
from monarch_core.kernels import block_gemm, monarch_triton, one_pass, support  # noqa: E402

H200_SMS = 132
META = torch.device("meta")
# Budget arithmetic, at the measured worst case of ~1 s per compile (Triton 3.6 on sm_90):
#  - pytest -m gpu runs under a 150 s timeout (gpu.FULL["pytest_timeout"]); its tests also run kernels
#    and an fp64 PyTorch reference (~30 s), so its compiles may take at most 100 s: ≤ 100 compiles.
#  - the whole run has 420 s (--budget-s default) inside the 8-minute call, of which the sanitizer runs
#    (under compute-sanitizer every kernel is slow, 2 × 90 s), the ceilings, the timings of ~70 kernel
#    cases and the FNO/MRI/NS sections need at least 240 s: the union of all compiles (the on-disk cache
#    is shared between the sections' processes) may take at most 180 s: ≤ 180 compiles.
PYTEST_GPU_CAP = 100
TOTAL_CAP = 180
STEPS_RESERVE = 16  # of TOTAL_CAP, for the model-step sections (2× the 8 measured); the fast test leaves it free


def _int_key(value: int) -> str:
    if value == 1:
        return "1"  # the JIT makes ints equal to 1 constexpr
    if value % 16 == 0:
        return "d16"
    return "i32" if -2**31 <= value < 2**31 else "i64"


def _compile_key(name, kernel, args, kwargs) -> tuple:
    """What Triton's JIT specialises a launch of `kernel` on (see the module docstring)."""
    kwargs = dict(kwargs)
    options = (kwargs.pop("num_warps", 4), kwargs.pop("num_stages", 3))
    values = dict(zip([p.name for p in kernel.params], args)) | kwargs
    key = []
    for param in kernel.params:
        value = values[param.name]
        if isinstance(value, torch.Tensor):
            aligned = (value.storage_offset() * value.element_size()) % 16 == 0
            key.append((param.name, str(value.dtype), aligned))
        elif param.is_constexpr or isinstance(value, (bool, str)) or value is None:
            key.append((param.name, value))
        else:
            key.append((param.name, _int_key(int(value))))
    return (name, options, tuple(key))


class Recorder:
    """Stands in for the kernels: records the compile key of every launch, under the current label."""

    def __init__(self):
        self.keys: dict[tuple, str] = {}
        self.label = ""
        self.real = dict(block_gemm._KERNELS)  # the jitted kernels, before the fixture replaces them

    def add(self, key):
        self.keys.setdefault(key, self.label)

    def kernel(self, name, real):
        recorder = self

        class Launch:
            def __getitem__(self, grid):
                return lambda *args, **kwargs: recorder.add(_compile_key(name, real, args, kwargs))

        return Launch()

    def tuned(self, name):
        """The autotuner compiles (and times) every config its pruning keeps, once per tuning key."""
        recorder, real = self, self.real[name]

        class Tuned:
            def __getitem__(self, grid):
                def launch(**args):
                    for config in block_gemm._prune(block_gemm._configs(), args):
                        options = dict(num_warps=config.num_warps, num_stages=config.num_stages)
                        recorder.add(_compile_key(name, real, (), {**args, **config.kwargs, **options}))
                return launch

        return Tuned()

    def labels(self, prefix) -> int:
        return sum(1 for label in self.keys.values() if label.startswith(prefix))


@pytest.fixture
def recorder(monkeypatch):
    rec = Recorder()
    for name, real in list(block_gemm._KERNELS.items()):
        monkeypatch.setitem(block_gemm._KERNELS, name, rec.kernel(name, real))
    monkeypatch.setattr(one_pass, "_one_pass_kernel", rec.kernel("one_pass", one_pass._one_pass_kernel))
    monkeypatch.setattr(block_gemm, "_tuned", rec.tuned)
    for module in (block_gemm, one_pass):
        monkeypatch.setattr(module, "gpu_sm_count", lambda device: H200_SMS)
    for module in (support, monarch_triton, one_pass):
        monkeypatch.setattr(module, "unsupported_reason", lambda *a: None)
    # the recorded kernels leave their outputs unwritten: let the dispatcher's self-check pass, as it does on
    # a GPU, so the probe's launches and the calls after it are all walked
    monkeypatch.setattr(self_check, "_relative_error", lambda got, want: 0.0)
    self_check.reset()
    monkeypatch.delenv("MONARCH_BACKEND", raising=False)  # auto: CPU references stay on the PyTorch path
    monkeypatch.setenv(gpu.AUTOTUNE_ENV, "0")  # what `bench gpu` sets for itself and its subprocesses
    monkeypatch.delenv("MONARCH_ONE_PASS", raising=False)
    monkeypatch.delenv("MONARCH_FP32_PRECISION", raising=False)
    yield rec
    self_check.reset()


def _walk_bench(rec, monkeypatch):
    cfg, gen = gpu.FULL, torch.Generator().manual_seed(0)
    rec.label = "bench sanitizer"
    sanitize_cases.run_cases(torch.device("cpu"), bf16=True)  # CPU tensors: the cases compare on the CPU
    for section, sizes, dtypes, passes in (("kernels", cfg["sizes"], cfg["dtypes"], (False, True)),
                                           ("kernels_tuned", cfg["tuned_sizes"], ("float32",), (False,))):
        rec.label = f"bench {section}"
        monkeypatch.setenv(gpu.AUTOTUNE_ENV, "1" if section == "kernels_tuned" else "0")
        for n in sizes:
            batch = max(1, cfg["elements"] // n)
            for dtype in dtypes:
                cases = bench_kernels._cases(META, n, batch, getattr(torch, dtype), True, gen, include_fft=False)
                for backward in passes:
                    for name, (fn, inputs, _, _) in cases.items():
                        if name.startswith("triton"):
                            bench_kernels._step(fn, inputs, backward)()
    monkeypatch.setenv(gpu.AUTOTUNE_ENV, "0")
    rec.label = "bench dft"
    for n in cfg["dft_sizes"]:
        variants, _ = bench_kernels.dft_variants(META, n, max(1, cfg["dft_elements"] // n), gen)
        for name, (fn, _, _) in variants.items():
            if name != "fft":
                fn()


#: the gpu-marked tests whose Triton calls `_walk_pytest_gpu` makes (checked against the test files)
GPU_TESTS = {"test_gpu_16bit_close_to_fp32_reference", "test_gpu_fp32_precision_modes_on_the_dft",
             "test_gpu_planar_16bit_dft_close_to_fft", "test_gpu_auto_dispatch_picks_triton",
             "test_gpu_one_pass_scratch_reuse_bitwise_across_program_counts",
             "test_cuda_matches_cpu",  # the Navier–Stokes solver, no Triton
             "test_gpu_model_equals_its_cpu_self_and_trains",  # tests/pde/experiments/test_models.py
             # tests/common/test_timing.py: CUDA-graph timing of plain torch operations, no Triton
             "test_replay_reruns_the_captured_kernels",
             "test_uncapturable_variant_falls_back_to_per_call_and_the_stream_stays_usable",
             "test_graph_time_of_a_launch_bound_call_is_below_its_per_call_time"}


def _walk_pytest_gpu(rec):
    """The Triton calls of the gpu-marked tests (test_kernels.py, test_kernels_16bit.py), shapes as there."""
    from monarch_core.kernels import monarch_multiply_planar, monarch_multiply_triton

    rec.label = "pytest gpu"
    empty = lambda *shape, dtype=torch.float32: torch.empty(shape, dtype=dtype, device=META)  # noqa: E731
    for n in (64, 1024, 4096):  # test_gpu_16bit_close_to_fp32_reference: batch 1000, forward + backward
        m = int(n ** 0.5)
        for dtype in (torch.bfloat16, torch.float16):
            x, w1, w2 = (t.requires_grad_() for t in (empty(1000, n, dtype=dtype), empty(m, m, m, dtype=dtype),
                                                       empty(m, m, m, dtype=dtype)))
            y = monarch_multiply_triton(x, w1, w2)
            torch.autograd.grad(y, (x, w1, w2), torch.empty_like(y))
    _, w1, w2 = (t.to(META) for t in dft_monarch(1024, norm="ortho"))
    for precision in ("ieee", "tf32x3", "tf32"):  # test_gpu_fp32_precision_modes_on_the_dft
        monarch_multiply_triton(empty(512, 1024, dtype=torch.complex64), w1, w2, precision=precision,
                                input_transposed=True)
    _, w1, w2 = (t.to(META) for t in dft_monarch(256, norm="ortho"))
    for dtype in (torch.bfloat16, torch.float16):  # test_gpu_planar_16bit_dft_close_to_fft
        x = empty(4096, 256, dtype=torch.complex64)
        monarch_multiply_planar(*(t.to(dtype).contiguous() for t in (x.real, x.imag, w1.real, w1.imag,
                                                                       w2.real, w2.imag)), input_transposed=True)
    for dtype in (torch.bfloat16, torch.float16):  # test_kernels_16bit: one-pass, n = 1024, batch 8192
        one_pass.monarch_multiply_one_pass(empty(8192, 1024, dtype=dtype), empty(32, 32, 32, dtype=dtype),
                                           empty(32, 32, 32, dtype=dtype))
    # test_gpu_auto_dispatch_picks_triton: monarch_multiply → the same kernels (its self-check of a forward
    # compares the call's own output: no other launch)
    monarch_multiply_triton(empty(100, 256), empty(16, 16, 16), empty(16, 16, 16))
    _walk_gpu_model_test()


def _walk_gpu_model_test():
    """test_gpu_model_equals_its_cpu_self_and_trains: every kind's FNO at (32, 24), forward and backward,
    every Monarch multiply dispatched to the (recording) kernels as on a GPU (without AMP, as `_walk_steps`)."""
    import os

    from pde.experiments.models import TRANSFORMS, build_fno

    previous = os.environ.get("MONARCH_BACKEND")
    os.environ["MONARCH_BACKEND"] = "triton"
    try:
        for kind in TRANSFORMS:
            model = build_fno(kind, (8, 6), in_channels=3, out_channels=1, hidden_channels=8, n_layers=2,
                              grid_size=(32, 24))
            model(torch.randn(4, 3, 32, 24)).square().mean().backward()
    finally:
        if previous is None:
            del os.environ["MONARCH_BACKEND"]
        else:
            os.environ["MONARCH_BACKEND"] = previous


def _gpu_marked_tests() -> set[str]:
    found = set()
    for path in Path(__file__).resolve().parents[1].rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and any("mark.gpu" in ast.unparse(d) for d in node.decorator_list):
                found.add(node.name)
    return found


def _walk_steps(rec, monkeypatch):
    """The fno_steps / mri_steps sections: one training step per transform kind at the bench's (default)
    settings, every Monarch multiply dispatched to the (recording) kernels as on a GPU. Without AMP: the
    transforms keep their complex64 factors under autocast, so the kernels see the same dtypes."""
    from benchmarks import steps

    rec.label = "bench steps"
    monkeypatch.setenv("MONARCH_BACKEND", "triton")
    try:
        # every model the fno_steps / mri_steps sections time; the rollout's frames all have one shape, so 2 of
        # its 40 frames make the same compiles
        _, errors, _ = steps.build_steps(torch.device("cpu"), models=("fno", "ns", "mri", "modl"), amp=False,
                                         settings={"fno": {"t_out": 2}})
    finally:
        monkeypatch.delenv("MONARCH_BACKEND")
    return errors


def test_every_gpu_marked_test_is_walked():
    assert _gpu_marked_tests() == GPU_TESTS, "a gpu-marked test was added or removed: walk its Triton calls here"


def test_the_recorder_sees_what_the_jit_specialises(recorder):
    """Different dtypes, tiles and integer specialisations are different compiles; a repeat is not."""
    from monarch_core.kernels import monarch_multiply_two_pass

    x, w = torch.empty(64, 256, device=META), torch.empty(16, 16, 16, device=META)
    monarch_multiply_two_pass(x, w, w)
    first = len(recorder.keys)
    assert first == 2  # pass 1 and pass 2 (different strides)
    monarch_multiply_two_pass(torch.empty(80, 256, device=META), w, w)
    assert len(recorder.keys) == first  # batch 80: same B_BUCKET, B divisible by 16 again
    monarch_multiply_two_pass(torch.empty(81, 256, device=META), w, w)
    assert len(recorder.keys) == first + 2  # B = 81 is not divisible by 16: a new specialisation
    monarch_multiply_two_pass(x.half(), w.half(), w.half())
    assert len(recorder.keys) == first + 4  # another dtype (and another heuristic tile)
    rows = {dict((e[0], e[1:]) for e in k[2])["a_re"][0]: dict((e[0], e[1]) for e in k[2])["BLOCK_B"]
            for k in recorder.keys}
    assert rows == {"torch.float32": 32, "torch.float16": 64}  # the heuristic tiles of block_gemm


def _count(recorder, monkeypatch, with_steps: bool) -> dict:
    _walk_pytest_gpu(recorder)
    counts = {"pytest gpu": len(recorder.keys)}
    _walk_bench(recorder, monkeypatch)
    counts["bench"] = len(recorder.keys) - counts["pytest gpu"]
    if with_steps:
        errors = _walk_steps(recorder, monkeypatch)
        assert not errors, errors
        counts["bench steps"] = len(recorder.keys) - counts["pytest gpu"] - counts["bench"]
    per_label = {label: recorder.labels(label) for label in dict.fromkeys(recorder.keys.values())}
    per_kernel = {name: sum(1 for k in recorder.keys if k[0] == name) for name in ("gemm", "wgrad", "one_pass")}
    print(f"\ndistinct Triton compiles: {len(recorder.keys)} ({per_label}; by kernel {per_kernel})")
    assert per_kernel["one_pass"] > 0 and per_label.get("bench kernels_tuned", 0) > 0  # the walk reached them
    assert counts["pytest gpu"] <= PYTEST_GPU_CAP, f"pytest -m gpu needs {counts['pytest gpu']} compiles > {PYTEST_GPU_CAP}"
    return {**counts, "total": len(recorder.keys), "per_label": per_label}


def test_the_gpu_run_needs_few_enough_compiles(recorder, monkeypatch):
    """The prepared GPU run (bench gpu, pytest -m gpu inside) must fit its budget at ~1 s per compile.

    Caps (arithmetic at PYTEST_GPU_CAP / TOTAL_CAP above): pytest -m gpu ≤ 100 compiles (100 s of its
    150 s timeout); the whole run ≤ 180 distinct compiles (180 s of the 420 s budget, leaving 240 s to
    sanitize, measure and run the model sections), of which STEPS_RESERVE are left to the model-step
    sections (walked by the slow test below). Fails above a cap, with the count per section.
    """
    counts = _count(recorder, monkeypatch, with_steps=False)
    assert counts["total"] <= TOTAL_CAP - STEPS_RESERVE, (
        f"bench gpu needs {counts['total']} distinct compiles (+ the model steps) > {TOTAL_CAP - STEPS_RESERVE}: "
        f"{counts['per_label']}")


@pytest.mark.slow
def test_the_whole_run_with_model_steps_needs_few_enough_compiles(recorder, monkeypatch):
    counts = _count(recorder, monkeypatch, with_steps=True)
    assert counts["bench steps"] <= STEPS_RESERVE, f"the model steps need {counts['bench steps']} compiles"
    assert counts["total"] <= TOTAL_CAP, f"bench gpu needs {counts['total']} distinct compiles > {TOTAL_CAP}"
