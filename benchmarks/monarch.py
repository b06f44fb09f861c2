"""`python run.py bench monarch`: dense matmul vs monarch_multiply vs torch.fft.

For each n and each value of --elements the batch is chosen so that batch·n = elements (every size
moves about the same data): 2^18 fp32 values (1 MiB, cache-resident on a CPU) and 2^21 (8 MiB, where
the permutation copies of the two-bmm path become memory-bound).
Rows timed (median of --repeats runs, same process, same device):
  dense         x @ Wᵀ with a dense n×n weight (cuBLAS / MKL)
  monarch       monarch_core.monarch_multiply, real dtype (PyTorch path on CPU, auto-dispatch on CUDA)
  two_bmm       the plain two-bmm path written out naively (contiguous copies around each bmm), the
                baseline our multiply must not be slower than
  fft           torch.fft.fft on complex64 of the same batch
  monarch_dft   the exact Monarch DFT (complex64) through monarch_multiply, input permutation in strides
Variants are timed interleaved round by round (common.timing.interleaved_times).
"""
from __future__ import annotations

import math

import torch

from common.bench_results import refuse_overwrite, write_results
from common.device import resolve_device
from common.environment import describe_environment
from common.tables import markdown_table
from common.timing import interleaved_times
from monarch_core import dft_monarch, factor_pair, monarch_multiply


def plain_two_bmm(x, w1, w2):
    """The straightforward two-bmm Monarch multiply (reshape, bmm, permutation copy, bmm, copy)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    batch = x.shape[0]
    z = torch.bmm(x.reshape(batch, k, p).transpose(0, 1).contiguous(), w1.transpose(1, 2))
    z = z.transpose(0, 1).reshape(batch, r, l).transpose(1, 2).transpose(0, 1).contiguous()
    y = torch.bmm(z, w2.transpose(1, 2))
    return y.permute(1, 2, 0).reshape(batch, s * l).contiguous()


def run(device: torch.device, sizes, dtype: torch.dtype, elements: float, repeats: int) -> list[dict]:
    rows = []
    gen = torch.Generator(device="cpu").manual_seed(0)
    for n in sizes:
        batch = max(1, int(elements) // n)
        b1, b2 = factor_pair(n)
        x = torch.randn(batch, n, generator=gen).to(device, dtype)
        W = (torch.randn(n, n, generator=gen) / math.sqrt(n)).to(device, dtype)
        w1 = torch.randn(b1, b2, b2, generator=gen).to(device, dtype)
        w2 = torch.randn(b2, b1, b1, generator=gen).to(device, dtype)
        xc = torch.randn(batch, n, dtype=torch.complex64, generator=gen).to(device)
        perm, d1, d2 = dft_monarch(n, dtype=torch.complex64, device=device)
        times = interleaved_times({  # round by round, so load changes hit every row alike
            "dense": lambda: x @ W.T,
            "monarch": lambda: monarch_multiply(x, w1, w2),
            "two_bmm": lambda: plain_two_bmm(x, w1, w2),
            "fft": lambda: torch.fft.fft(xc),
            "monarch_dft": lambda: monarch_multiply(xc, d1, d2, input_transposed=True),
        }, device, repeats)
        rows.append({
            "n": n, "batch": batch, "dtype": str(dtype).replace("torch.", ""), "sizes": [b1, b2],
            "seconds": times,
            "speedup_monarch_over_dense": times["dense"] / times["monarch"],
            "speedup_monarch_over_two_bmm": times["two_bmm"] / times["monarch"],
            "monarch_dft_over_fft_time": times["monarch_dft"] / times["fft"],
        })
        print(f"n={n:6d} batch={batch:6d}  dense {times['dense'] * 1e3:8.3f} ms  monarch {times['monarch'] * 1e3:8.3f} ms"
              f"  two-bmm {times['two_bmm'] * 1e3:8.3f} ms  fft {times['fft'] * 1e3:8.3f} ms"
              f"  monarch-dft {times['monarch_dft'] * 1e3:8.3f} ms", flush=True)
    return rows


def main(args) -> int:
    from common.machine_load import LoadGuard

    device = resolve_device(args.device)
    dtype = getattr(torch, args.dtype)
    stem = f"monarch_{device.type}_{args.dtype}"
    refuse_overwrite(args.out, stem, getattr(args, "overwrite", False))
    guard = LoadGuard(device, getattr(args, "allow_loaded", False), "bench monarch")
    rows = [row for elements in args.elements for row in run(device, args.sizes, dtype, elements, args.repeats)]
    env = describe_environment(device)
    env["load"] = guard.finish()
    table = markdown_table(
        ["n", "batch", "dense ms", "monarch ms", "two-bmm ms", "fft (c64) ms", "monarch DFT (c64) ms",
         "monarch vs dense", "monarch vs two-bmm", "monarch DFT / fft time"],
        [[r["n"], r["batch"], *(f"{r['seconds'][k] * 1e3:.3f}" for k in ("dense", "monarch", "two_bmm", "fft", "monarch_dft")),
          f"{r['speedup_monarch_over_dense']:.2f}×", f"{r['speedup_monarch_over_two_bmm']:.2f}×",
          f"{r['monarch_dft_over_fft_time']:.2f}"] for r in rows],
    )
    markdown = (f"# Monarch multiply benchmark ({env['device']}){guard.label()}\n\n"
                f"torch {env['torch']}, {env['threads']} threads, 1-min load average {env['load_average_1min']}; dtype {args.dtype} for dense/monarch/two-bmm, complex64 for the DFT rows; "
                f"batch·n ∈ {{{', '.join(str(int(e)) for e in args.elements)}}}; median of {args.repeats} interleaved rounds.\n\n"
                f"Command: `{env['command']}`\n\n{table}\n"
                "Speed-ups are time ratios measured in the same run (higher is better for Monarch).\n")
    print("\n" + table)
    paths = write_results(args.out, stem, {"environment": env, "rows": rows}, markdown)
    print("wrote", *paths)
    return 0
