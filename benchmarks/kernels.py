"""`python run.py bench kernels`: dense (cuBLAS) vs PyTorch path vs Triton vs torch.fft, against the roofline.

For every n (square Monarch, sizes closest to √n), batch size and dtype (float32, bfloat16), forward
and forward+backward, the rows of one case are timed interleaved round by round
(common.timing.graph_and_call_times: CUDA-graph replay on CUDA) in one process on one device:
  dense            x @ Wᵀ with a dense n×n weight (cuBLAS on CUDA)
  torch            monarch_core.monarch_multiply_torch (two bmm + permutation copies)
  triton           monarch_core.kernels.monarch_multiply_triton (the dispatcher's choice: the one-pass
                   forward where it applies, else two passes; fp32 precision from MONARCH_FP32_PRECISION)
  triton_one_pass  monarch_core.kernels.one_pass.monarch_multiply_one_pass, where that module exists and
                   one_pass_applies(n, b1, b2, dtype)
  triton_two_pass  monarch_core.kernels.monarch_multiply_two_pass (the two-pass kernels at every n)
  fft              torch.fft.fft on complex64 (the dtype column does not apply)
and, forward only, the Monarch DFT through the kernels (input permutation folded into the loads):
  dft_c64      complex64, "ieee";  dft_c64_tf32x3;  dft_bf16, dft_fp16 on separate real/imag planes.

Each row reports time (median), achieved GB/s counting only the bytes that must move (x read once,
y written once, the weights once; backward adds gy read, x re-read, gx written, weights re-read and their
gradients written) and the fraction of the device-to-device copy bandwidth measured in the same run.
The run also measures a large bf16 matmul (FLOP/s ceiling). A variant that fails on its first call is
recorded with its error and left out of the timing. Writes kernels_<device>.json/.md/.png.

On CPU the Triton rows are skipped unless TRITON_INTERPRET=1 (then they run in the interpreter:
correctness only, keep sizes tiny). Small batches may sit in L2 (GB/s above HBM is possible there).
"""
from __future__ import annotations

import os
import re

import torch

from common.bench_results import refuse_overwrite, write_results
from common.device import resolve_device
from common.environment import describe_environment, device_name
from common.files import save_figure
from common.tables import markdown_table
from common.timing import graph_and_call_times

GIB = 1 << 30
#: calls per timed sample on CUDA: back-to-back launches hide the per-sample synchronisation gap
CUDA_INNER_CALLS = 5


def one_pass_module():
    """monarch_core.kernels.one_pass when it exists and imports (it is optional), else None."""
    try:
        from monarch_core.kernels import one_pass
    except Exception:  # absent or broken: the benchmark runs without that row
        return None
    return one_pass


def triton_usable(device: torch.device) -> bool:
    """Triton rows run on CUDA, or on the CPU under TRITON_INTERPRET=1 (interpreter: correctness only)."""
    from monarch_core.backend import triton_available

    return triton_available() and (device.type == "cuda" or os.environ.get("TRITON_INTERPRET") == "1")


def timed(variants: dict, device: torch.device, rounds: int, warmup: int = 2) -> dict:
    """{name: {"seconds", "seconds_per_call", "timing"}}: medians of interleaved rounds; on CUDA each
    sample is CUDA_INNER_CALLS calls (divided out), timed through CUDA-graph replay for "seconds" (the
    device's time: host launch overhead excluded) and from Python for "seconds_per_call"
    (common.timing.graph_and_call_times). On the CPU both are the plain per-call time."""
    calls = CUDA_INNER_CALLS if device.type == "cuda" else 1
    return graph_and_call_times(variants, device, rounds, warmup, calls)


def usable_variants(variants: dict) -> tuple[dict, dict]:
    """(variants whose first call succeeds, {name: error text} of the others)."""
    ok, errors = {}, {}
    for name, fn in variants.items():
        try:
            fn()
            ok[name] = fn
        except Exception as error:  # one broken kernel must not stop the others being measured
            errors[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
    return ok, errors


def measure_ceilings(device: torch.device, rounds: int, copy_bytes: int | None = None,
                     matmul_size: int | None = None) -> dict:
    """Device-to-device copy bandwidth (bytes read + written per second) and matmul FLOP/s (bf16 on
    CUDA, fp32 on CPU), timed interleaved."""
    gpu = device.type == "cuda"
    numel = (copy_bytes or (2 * GIB if gpu else GIB // 8)) // 4
    src = torch.empty(numel, dtype=torch.float32, device=device).normal_()
    dst = torch.empty_like(src)
    m = matmul_size or (8192 if gpu else 1024)
    dtype = torch.bfloat16 if gpu else torch.float32
    a = torch.randn(m, m, device=device, dtype=dtype)
    b = torch.randn(m, m, device=device, dtype=dtype)
    t = {name: v["seconds"] for name, v in
         timed({"copy": lambda: dst.copy_(src), "matmul": lambda: a @ b}, device, rounds).items()}
    return {"copy_GBps": 2 * numel * 4 / t["copy"] / 1e9, "copy_bytes": numel * 4,
            "matmul_TFLOPs": 2 * m**3 / t["matmul"] / 1e12,
            "matmul_dtype": str(dtype).replace("torch.", ""), "matmul_size": m}


def _min_bytes(batch: int, n: int, weight_numel: int, element: int, backward: bool) -> int:
    """Bytes that must move: x, y (and gy, x again, gx) once; the weights once (and again + their grads)."""
    if not backward:
        return (2 * batch * n + weight_numel) * element
    return (5 * batch * n + 3 * weight_numel) * element


def _step(fn, inputs, backward: bool):
    """fn(*inputs) or, for forward+backward, the forward plus the gradient of every input that requires one."""
    if not backward:
        return lambda: fn(*inputs)
    wanted = [t for t in inputs if t.requires_grad]

    def run():
        y = fn(*inputs)
        torch.autograd.grad(y, wanted, torch.ones_like(y))

    return run


def _random(shape, device, gen, dtype, draw=torch.float32) -> torch.Tensor:
    """Standard normal values drawn in `draw` on the CPU, then moved to device as dtype. On the meta device
    no values are drawn (shapes only: tests/monarch_core/test_compile_count.py walks the cases that way)."""
    if device.type == "meta":
        return torch.empty(shape, dtype=dtype, device=device)
    return torch.randn(shape, dtype=draw, generator=gen).to(device, dtype)


def _cases(device, n, batch, dtype, triton_ok, gen, include_fft=True):
    """{name: (fn, inputs, element size, weight numel)} for one (n, batch, dtype)."""
    from monarch_core import factor_pair, monarch_multiply_torch

    b1, b2 = factor_pair(n)
    rnd = lambda *shape: _random(shape, device, gen, dtype).requires_grad_()  # noqa: E731
    x, W = rnd(batch, n), rnd(n, n)
    w1, w2 = rnd(b1, b2, b2), rnd(b2, b1, b1)
    el, weights = torch.empty((), dtype=dtype).element_size(), w1.numel() + w2.numel()
    cases = {"dense": (lambda x, W: x @ W.T, (x, W), el, n * n),
             "torch": (monarch_multiply_torch, (x, w1, w2), el, weights)}
    if triton_ok:
        from monarch_core.kernels import monarch_multiply_triton, monarch_multiply_two_pass

        cases["triton"] = (monarch_multiply_triton, (x, w1, w2), el, weights)
        one_pass = one_pass_module()
        if one_pass is not None and one_pass.one_pass_applies(n, b1, b2, dtype):
            cases["triton_one_pass"] = (one_pass.monarch_multiply_one_pass, (x, w1, w2), el, weights)
        cases["triton_two_pass"] = (monarch_multiply_two_pass, (x, w1, w2), el, weights)
    if include_fft:
        xc = _random((batch, n), device, gen, torch.complex64, torch.complex64).requires_grad_()
        cases["fft"] = (torch.fft.fft, (xc,), 8, 0)
    return cases


def _row(name, n, batch, dtype, backward, timing: dict, nbytes, ceilings):
    """One result row; timing is one entry of timed(): GB/s from the device time ("seconds")."""
    gbps = nbytes / timing["seconds"] / 1e9
    return {"method": name, "n": n, "batch": batch, "dtype": dtype, "pass": "fwd+bwd" if backward else "fwd",
            **timing, "min_bytes": nbytes, "GBps": gbps, "copy_fraction": gbps / ceilings["copy_GBps"]}


def _error_row(name, n, batch, dtype, backward, error):
    return {"method": name, "n": n, "batch": batch, "dtype": dtype, "pass": "fwd+bwd" if backward else "fwd",
            "error": error}


def time_case(device, n: int, batch: int, dtype_name: str, backward: bool, ceilings: dict, rounds: int, *,
              triton_ok: bool, include_fft: bool = True, dense_max_flop: float = 2e13, gen=None) -> list[dict]:
    """Rows of every method for one (n, batch, dtype, pass), timed interleaved; failures as error rows."""
    gen = gen or torch.Generator().manual_seed(0)
    cases = _cases(device, n, batch, getattr(torch, dtype_name), triton_ok, gen, include_fft)
    if 2.0 * batch * n * n * (3 if backward else 1) > dense_max_flop:
        cases.pop("dense")  # too slow to be worth the time: the roofline rows say enough at that size
    variants, errors = usable_variants({name: _step(fn, inputs, backward) for name, (fn, inputs, _, _) in cases.items()})
    seconds = timed(variants, device, rounds) if variants else {}
    rows = []
    for name, (_, _, el, weights) in cases.items():
        dtype = "complex64" if name == "fft" else dtype_name
        if name in errors:
            rows.append(_error_row(name, n, batch, dtype, backward, errors[name]))
        else:
            rows.append(_row(name, n, batch, dtype, backward, seconds[name],
                             _min_bytes(batch, n, weights, el, backward), ceilings))
    return rows


def dft_variants(device, n: int, batch: int, gen=None, triton_ok: bool = True) -> tuple[dict, torch.Tensor]:
    """({name: (fn, to_complex, element bytes per real plane value)}, x complex64 (batch, n)) for the
    Monarch DFT through the kernels (or, without Triton, the PyTorch path) and torch.fft.fft; every
    to_complex(fn()) is fft(x) up to rounding. The planar rows' fn returns the planes: the join into a
    complex tensor is not part of what is timed."""
    from monarch_core import dft_monarch, monarch_multiply_torch

    gen = gen or torch.Generator().manual_seed(0)
    _, w1, w2 = (t.to(device) for t in dft_monarch(n, device="cpu" if device.type == "meta" else device))
    x = _random((batch, n), device, gen, torch.complex64, torch.complex64)
    same = lambda y: y  # noqa: E731
    variants = {"fft": (lambda: torch.fft.fft(x), same, 4)}
    if not triton_ok:
        variants["dft_c64_torch"] = (lambda: monarch_multiply_torch(x, w1, w2, input_transposed=True), same, 4)
        return variants, x
    from monarch_core.kernels import monarch_multiply_planar, monarch_multiply_triton

    for name, precision in (("dft_c64", "ieee"), ("dft_c64_tf32x3", "tf32x3")):
        variants[name] = (lambda precision=precision: monarch_multiply_triton(
            x, w1, w2, precision=precision, input_transposed=True), same, 4)
    joined = lambda planes: torch.complex(planes[0].float(), planes[1].float())  # noqa: E731
    for name, dt in (("dft_bf16", torch.bfloat16), ("dft_fp16", torch.float16)):
        planes = [t.to(dt).contiguous() for t in (x.real, x.imag, w1.real, w1.imag, w2.real, w2.imag)]
        variants[name] = (lambda planes=planes: monarch_multiply_planar(*planes, input_transposed=True), joined, 2)
    return variants, x


def dft_rows(device, n: int, batch: int, ceilings: dict, rounds: int, triton_ok: bool, gen=None) -> list[dict]:
    """Forward rows of the Monarch DFT variants and torch.fft (complex64), each with its relative error
    against torch.fft.fft of the complex64 input (‖y − fft(x)‖ / ‖fft(x)‖ over the batch; the 16-bit
    rows include the rounding of x and the factors)."""
    from monarch_core import dft_monarch

    variants, x = dft_variants(device, n, batch, gen, triton_ok)
    _, w1, w2 = dft_monarch(n)
    weights = 2 * (w1.numel() + w2.numel())
    with torch.no_grad():
        reference = torch.fft.fft(x)
        fns, errors = usable_variants({name: fn for name, (fn, _, _) in variants.items()})
        accuracy = {name: float(torch.linalg.vector_norm(variants[name][1](fn()) - reference)
                                / torch.linalg.vector_norm(reference)) for name, fn in fns.items()}
        seconds = timed(fns, device, rounds) if fns else {}
    rows = []
    for name, (_, _, el) in variants.items():
        dtype = "complex64" if name == "fft" else name.split("_")[1]
        if name in errors:
            rows.append(_error_row(name, n, batch, dtype, False, errors[name]))
            continue
        row = _row(name, n, batch, dtype, False, seconds[name], _min_bytes(batch, 2 * n, weights, el, False), ceilings)
        row["rel_error_vs_fft"] = accuracy[name]
        rows.append(row)
    return rows


def speedups(rows: list[dict]) -> None:
    """Adds time(method) / time(triton) to dense/torch rows of the same case, and on fft rows
    time(fft) / time(dft_bf16) of the same n and batch."""
    index = {(r["method"], r["n"], r["batch"], r["dtype"], r["pass"]): r["seconds"] for r in rows if "seconds" in r}
    for r in rows:
        if "seconds" not in r:
            continue
        key = (r["n"], r["batch"], r["dtype"], r["pass"])
        if ("triton", *key) in index and r["method"] in ("dense", "torch", "triton_one_pass", "triton_two_pass"):
            r["triton_speedup"] = r["seconds"] / index[("triton", *key)]
        if r["method"] == "fft" and r["pass"] == "fwd" and ("dft_bf16", r["n"], r["batch"], "bf16", "fwd") in index:
            r["dft_bf16_speedup"] = r["seconds"] / index[("dft_bf16", r["n"], r["batch"], "bf16", "fwd")]


def kernel_table(rows: list[dict]) -> str:
    def note(r):
        if "error" in r:
            return "error: " + r["error"]
        if "triton_speedup" in r:
            return f"{r['triton_speedup']:.2f}×"
        if "dft_bf16_speedup" in r:
            return f"bf16 DFT {r['dft_bf16_speedup']:.2f}×"
        return f"err {r['rel_error_vs_fft']:.1e}" if "rel_error_vs_fft" in r else ""

    return markdown_table(
        ["method", "dtype", "pass", "n", "batch", "ms", "ms per call", "timing", "GB/s", "of copy BW", "note"],
        [[r["method"], r["dtype"], r["pass"], r["n"], r["batch"],
          *((f"{r['seconds'] * 1e3:.4f}", f"{r.get('seconds_per_call', r['seconds']) * 1e3:.4f}",
             r.get("timing", "per-call"), f"{r['GBps']:.1f}", f"{100 * r['copy_fraction']:.1f}%")
            if "seconds" in r else ("",) * 5), note(r)] for r in rows])


def plot_times(rows: list[dict], path, title: str) -> None:
    """Time vs n per method (forward, largest batch of each n; log-log): one panel per real dtype of the
    multiply rows (with torch.fft complex64 for scale), one panel of the Monarch DFT rows against torch.fft."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in rows if r["pass"] == "fwd" and "seconds" in r]
    is_dft = lambda r: r["method"].startswith("dft") or r["method"] == "fft"  # noqa: E731
    panels = {dtype: [r for r in rows if (r["dtype"] == dtype and not is_dft(r)) or r["method"] == "fft"]
              for dtype in sorted({r["dtype"] for r in rows if not is_dft(r)})}
    if any(r["method"].startswith("dft") for r in rows):
        panels["Monarch DFT vs torch.fft"] = [r for r in rows if is_dft(r)]
    panels = panels or {"no rows": []}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), squeeze=False)
    for ax, (panel, chosen) in zip(axes[0], panels.items()):
        for method in sorted({r["method"] for r in chosen}):
            largest = {}
            for r in chosen:
                if r["method"] == method and (r["n"] not in largest or r["batch"] > largest[r["n"]]["batch"]):
                    largest[r["n"]] = r
            ns = sorted(largest)
            ax.plot(ns, [largest[n]["seconds"] * 1e3 for n in ns], marker="o",
                    label=f"{method} ({largest[ns[0]]['dtype']})")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("n")
        ax.set_ylabel("ms per call (largest batch of each n)")
        ax.set_title(f"{panel}, forward", fontsize=9)
        if chosen:
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def run(args) -> dict:
    from tqdm import tqdm

    device = resolve_device(args.device)
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    triton_ok = triton_usable(device)
    if device.type == "cpu" and not interpreted:
        print("CPU without TRITON_INTERPRET=1: Triton rows skipped (set it to run them, tiny sizes only)")
    ceilings = measure_ceilings(device, args.repeats)
    print(f"copy bandwidth {ceilings['copy_GBps']:.0f} GB/s, {ceilings['matmul_dtype']} matmul "
          f"{ceilings['matmul_TFLOPs']:.1f} TFLOP/s")
    gen = torch.Generator().manual_seed(0)
    combos = [(n, b, d, bwd) for n in args.sizes for b in args.batches if b * n <= args.max_elements
              for d in args.dtypes for bwd in (False, True)]
    rows = []
    for n, batch, dtype_name, backward in tqdm(combos, desc="bench kernels", unit="case"):
        # complex64 regardless of the dtype column: time fft once per (n, batch, pass)
        rows += time_case(device, n, batch, dtype_name, backward, ceilings, args.repeats, triton_ok=triton_ok,
                          include_fft=dtype_name == args.dtypes[0], dense_max_flop=args.dense_max_flop, gen=gen)
        if not backward and dtype_name == args.dtypes[0]:
            rows += [r for r in dft_rows(device, n, batch, ceilings, args.repeats, triton_ok, gen)
                     if r["method"] != "fft"]  # fft is already a row of this case
    environment = describe_environment(device)
    environment.update(device_type=device.type, interpreted=interpreted,
                       fp32_precision=os.environ.get("MONARCH_FP32_PRECISION", "ieee"),
                       autotune=os.environ.get("MONARCH_TRITON_AUTOTUNE", "1") != "0",
                       one_pass_available=one_pass_module() is not None)
    return {"environment": environment, "ceilings": ceilings, "rows": rows}


def main(args) -> int:
    from common.machine_load import LoadGuard

    device = resolve_device(args.device)
    slug = re.sub(r"[^a-z0-9]+", "-", device_name(device).lower()).strip("-") if device.type == "cuda" else "cpu"
    refuse_overwrite(args.out, f"kernels_{slug}", getattr(args, "overwrite", False))
    guard = LoadGuard(device, getattr(args, "allow_loaded", False), "bench kernels")
    result = run(args)
    result["environment"]["load"] = guard.finish()
    speedups(result["rows"])
    env, ceil = result["environment"], result["ceilings"]
    table = kernel_table(result["rows"])
    markdown = (f"# Monarch kernels benchmark ({env['device']}){guard.label()}\n\n"
                f"torch {env['torch']}, triton {env['triton']}, fp32 precision {env['fp32_precision']}, "
                f"autotune {env['autotune']}, {env['threads']} threads, 1-min load average "
                f"{env['load_average_1min']}"
                f"{', TRITON_INTERPRET=1 (interpreter: times meaningless)' if env['interpreted'] else ''}.\n"
                f"Copy bandwidth {ceil['copy_GBps']:.0f} GB/s; {ceil['matmul_dtype']} {ceil['matmul_size']}³ matmul "
                f"{ceil['matmul_TFLOPs']:.1f} TFLOP/s (same run). Median of {args.repeats} interleaved rounds.\n\n"
                f"Command: `{env['command']}`\n\nGB/s counts only the bytes that must move (x, y and the weights "
                "once; see benchmarks/kernels.py). 'note' = time of the row / time of the Triton row of the same "
                "case; on fft rows, time of torch.fft / time of the bf16 Monarch DFT; on DFT rows, the relative "
                "error against torch.fft. 'ms' is the device's time: on CUDA through CUDA-graph replay "
                "(timing cuda-graph) so that Python's launch overhead is excluded; 'ms per call' is the time "
                "a Python loop sees, overhead included (the same on the CPU).\n\n" + table)
    print("\n" + table)
    paths = write_results(args.out, f"kernels_{slug}", result, markdown)
    png = paths[0].with_suffix(".png")
    plot_times(result["rows"], png, env["device"])
    print("wrote", *paths, png)
    return 0
