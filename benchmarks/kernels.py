"""`python run.py bench kernels`: dense (cuBLAS) vs PyTorch path vs Triton vs torch.fft, against the roofline.

For every n (square Monarch, sizes closest to √n), batch size and dtype (float32, bfloat16), forward
and forward+backward, rows are timed in one process on one device:
  dense        x @ Wᵀ with a dense n×n weight (cuBLAS on CUDA)
  torch        monarch_core.monarch_multiply_torch (two bmm + permutation copies)
  triton       monarch_core.kernels.monarch_multiply_triton (fp32 in "ieee" precision)
  fft          torch.fft.fft on complex64 (the dtype column does not apply)
and, forward only, the Monarch DFT through the kernels (input permutation folded into the loads):
  dft_c64      complex64, "ieee";  dft_c64_tf32x3;  dft_bf16, dft_fp16 on separate real/imag planes.

Each row reports time (median), achieved GB/s counting only the bytes that must move (x read once,
y written once, the weights once; backward adds gy read, x re-read, gx written, weights re-read and their
gradients written) and the fraction of the device-to-device copy bandwidth measured in the same run.
The run also measures a large bf16 matmul (FLOP/s ceiling). Writes kernels_<device>.json/.md/.png.

On CPU the Triton rows are skipped unless TRITON_INTERPRET=1 (then they run in the interpreter:
correctness only, keep sizes tiny). Small batches may sit in L2 (GB/s above HBM is possible there).
"""
from __future__ import annotations

import os
import re
import statistics

import torch

from benchmarks.timing import environment, markdown_table, median_time, pick_device, write_results

GIB = 1 << 30


def _time(fn, device: torch.device, repeats: int) -> float:
    """Median seconds per call; on CUDA timed with events over 5 back-to-back calls to hide launch gaps."""
    if device.type != "cuda":
        return median_time(fn, device, repeats, warmup=1)
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    inner, times = 5, []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(inner):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3 / inner)
    return statistics.median(times)


def measure_ceilings(device: torch.device, repeats: int) -> dict:
    """Device-to-device copy bandwidth (bytes read + written per second) and bf16 matmul FLOP/s."""
    numel = (2 * GIB if device.type == "cuda" else GIB // 8) // 4
    src = torch.empty(numel, dtype=torch.float32, device=device).normal_()
    dst = torch.empty_like(src)
    t_copy = _time(lambda: dst.copy_(src), device, repeats)
    del src, dst
    m, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a = torch.randn(m, m, device=device, dtype=dtype)
    b = torch.randn(m, m, device=device, dtype=dtype)
    t_mm = _time(lambda: a @ b, device, repeats)
    return {"copy_GBps": 2 * numel * 4 / t_copy / 1e9, "matmul_TFLOPs": 2 * m**3 / t_mm / 1e12,
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


def _cases(device, n, batch, dtype, triton_ok, gen):
    """(name, fn, inputs, element size, weight numel) for one (n, batch, dtype)."""
    from monarch_core import factor_pair, monarch_multiply_torch

    b1, b2 = factor_pair(n)
    rnd = lambda *shape, dt=dtype: torch.randn(*shape, generator=gen).to(device, dt).requires_grad_()  # noqa: E731
    x, W = rnd(batch, n), rnd(n, n)
    w1, w2 = rnd(b1, b2, b2), rnd(b2, b1, b1)
    el = torch.empty((), dtype=dtype).element_size()
    cases = [("dense", lambda x, W: x @ W.T, (x, W), el, n * n),
             ("torch", monarch_multiply_torch, (x, w1, w2), el, w1.numel() + w2.numel())]
    if triton_ok:
        from monarch_core.kernels import monarch_multiply_triton

        cases.append(("triton", monarch_multiply_triton, (x, w1, w2), el, w1.numel() + w2.numel()))
    xc = torch.randn(batch, n, dtype=torch.complex64, generator=gen).to(device).requires_grad_()
    cases.append(("fft", torch.fft.fft, (xc,), 8, 0))
    return cases


def _dft_cases(device, n, batch, gen):
    from monarch_core import dft_monarch
    from monarch_core.kernels import monarch_multiply_planar, monarch_multiply_triton

    _, w1, w2 = dft_monarch(n, device=device)
    x = torch.randn(batch, n, dtype=torch.complex64, generator=gen).to(device)
    weights = w1.numel() + w2.numel()
    cases = [
        ("dft_c64", lambda: monarch_multiply_triton(x, w1, w2, precision="ieee", input_transposed=True), 4),
        ("dft_c64_tf32x3", lambda: monarch_multiply_triton(x, w1, w2, precision="tf32x3", input_transposed=True), 4),
    ]  # element = bytes per real plane value: the rows count 2n planes values per vector
    for name, dt in (("dft_bf16", torch.bfloat16), ("dft_fp16", torch.float16)):
        planes = [t.to(dt).contiguous() for t in (x.real, x.imag, w1.real, w1.imag, w2.real, w2.imag)]
        cases.append((name, lambda planes=planes: monarch_multiply_planar(*planes, input_transposed=True), 2))
    return [(name, fn, el, weights) for name, fn, el in cases]


def run(args) -> dict:
    from tqdm import tqdm

    from monarch_core.backend import triton_available

    device = pick_device(args.device)
    interpreted = os.environ.get("TRITON_INTERPRET") == "1"
    triton_ok = triton_available() and (device.type == "cuda" or interpreted)
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
        dtype = getattr(torch, dtype_name)
        for name, fn, inputs, el, weights in _cases(device, n, batch, dtype, triton_ok, gen):
            if name == "fft" and dtype_name != args.dtypes[0]:
                continue  # complex64 regardless of the dtype column: time it once per (n, batch)
            if name == "dense" and 2.0 * batch * n * n * (3 if backward else 1) > args.dense_max_flop:
                continue
            seconds = _time(_step(fn, inputs, backward), device, args.repeats)
            rows.append(_row(name, n, batch, "complex64" if name == "fft" else dtype_name, backward, seconds,
                             _min_bytes(batch, n, weights, el, backward), ceilings))
        if triton_ok and not backward and dtype_name == args.dtypes[0]:
            for name, fn, el, weights in _dft_cases(device, n, batch, gen):
                seconds = _time(fn, device, args.repeats)
                rows.append(_row(name, n, batch, name.split("_")[1], False, seconds,
                                 _min_bytes(batch, 2 * n, 2 * weights, el, False), ceilings))
    return {"environment": {**environment(device), "device_type": device.type, "interpreted": interpreted,
                            "fp32_precision": os.environ.get("MONARCH_FP32_PRECISION", "ieee"),
                            "autotune": os.environ.get("MONARCH_TRITON_AUTOTUNE", "1") != "0"},
            "ceilings": ceilings, "rows": rows}


def _row(name, n, batch, dtype, backward, seconds, nbytes, ceilings):
    gbps = nbytes / seconds / 1e9
    return {"method": name, "n": n, "batch": batch, "dtype": dtype, "pass": "fwd+bwd" if backward else "fwd",
            "seconds": seconds, "min_bytes": nbytes, "GBps": gbps, "copy_fraction": gbps / ceilings["copy_GBps"]}


def _speedups(rows):
    """time(method) / time(triton) for the same (n, batch, dtype, pass); fft and DFT rows against dft_bf16."""
    index = {(r["method"], r["n"], r["batch"], r["dtype"], r["pass"]): r["seconds"] for r in rows}
    for r in rows:
        key = (r["n"], r["batch"], r["dtype"], r["pass"])
        if ("triton", *key) in index and r["method"] in ("dense", "torch"):
            r["triton_speedup"] = r["seconds"] / index[("triton", *key)]
        if r["method"] == "fft" and r["pass"] == "fwd" and ("dft_bf16", r["n"], r["batch"], "bf16", "fwd") in index:
            r["dft_bf16_speedup"] = r["seconds"] / index[("dft_bf16", r["n"], r["batch"], "bf16", "fwd")]


def _plot(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in result["rows"] if r["pass"] == "fwd"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for method in sorted({r["method"] for r in rows}):
        for dtype in sorted({r["dtype"] for r in rows if r["method"] == method}):
            pts = {}
            for r in rows:
                if r["method"] == method and r["dtype"] == dtype:
                    if r["n"] not in pts or r["batch"] > pts[r["n"]][0]:
                        pts[r["n"]] = (r["batch"], r["copy_fraction"])
            ns = sorted(pts)
            ax.plot(ns, [pts[n][1] for n in ns], marker="o", label=f"{method} {dtype}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("n")
    ax.set_ylabel("fraction of copy bandwidth (largest batch)")
    ax.set_title(f"Forward pass, {result['environment']['device']}")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(args) -> int:
    result = run(args)
    _speedups(result["rows"])
    env, ceil = result["environment"], result["ceilings"]
    table = markdown_table(
        ["method", "dtype", "pass", "n", "batch", "ms", "GB/s", "of copy BW", "triton speed-up"],
        [[r["method"], r["dtype"], r["pass"], r["n"], r["batch"], f"{r['seconds'] * 1e3:.4f}", f"{r['GBps']:.1f}",
          f"{100 * r['copy_fraction']:.1f}%",
          f"{r['triton_speedup']:.2f}×" if "triton_speedup" in r else
          (f"bf16 DFT {r['dft_bf16_speedup']:.2f}×" if "dft_bf16_speedup" in r else "")] for r in result["rows"]])
    markdown = (f"# Monarch kernels benchmark ({env['device']})\n\n"
                f"torch {env['torch']}, triton {env['triton']}, fp32 precision {env['fp32_precision']}, "
                f"autotune {env['autotune']}{', TRITON_INTERPRET=1 (interpreter: times meaningless)' if env['interpreted'] else ''}.\n"
                f"Copy bandwidth {ceil['copy_GBps']:.0f} GB/s; {ceil['matmul_dtype']} {ceil['matmul_size']}³ matmul "
                f"{ceil['matmul_TFLOPs']:.1f} TFLOP/s (same run). Median of {args.repeats} timings.\n\n"
                f"Command: `{env['command']}`\n\nGB/s counts only the bytes that must move (x, y and the weights "
                "once; see benchmarks/kernels.py). 'triton speed-up' = time of the row / time of the Triton row "
                "of the same case; on fft rows, time of torch.fft / time of the bf16 Monarch DFT.\n\n" + table)
    print("\n" + table)
    slug = re.sub(r"[^a-z0-9]+", "-", env["device"].lower()).strip("-") if env["device_type"] == "cuda" else "cpu"
    paths = write_results(args.out, f"kernels_{slug}", result, markdown)
    png = paths[0].with_suffix(".png")
    _plot(result, png)
    print("wrote", *paths, png)
    return 0
