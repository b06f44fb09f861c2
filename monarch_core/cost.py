"""Parameter and FLOP counts of the transform kinds, for benchmarks and reports.

FLOPs are real floating-point operations per transformed vector: a complex multiply-add counts 8,
a real one 2; the FFT uses the conventional 5·n·log2(n) for complex input.
"""
from __future__ import annotations

import math

from torch import nn

from .factors import factor_pair


def monarch_cost(w1_shape, w2_shape, complex_valued: bool = False) -> dict:
    """{"params", "flops"} of one Monarch multiply with these factor shapes (real numbers counted)."""
    k, q, p = w1_shape
    l, s, r = w2_shape
    entries = k * q * p + l * s * r
    per_entry = 2 if complex_valued else 1
    return {"params": entries * per_entry, "flops": entries * (8 if complex_valued else 2)}


def transform_cost(kind: str, n: int, sizes=None) -> dict:
    """{"params", "flops"} of a complex length-n transform of this kind (see LearnableDFT)."""
    if kind == "fft":
        return {"params": 0, "flops": int(5 * n * math.log2(n))}
    if kind == "dense":
        return {"params": 2 * n * n, "flops": 8 * n * n}
    if kind == "monarch":
        b1, b2 = factor_pair(n, sizes)
        return monarch_cost((b1, b2, b2), (b2, b1, b1), complex_valued=True)
    raise ValueError(f"kind must be 'fft', 'dense' or 'monarch', got {kind!r}")


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (real) parameters of a module; complex parameters count twice."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters()
               if p.requires_grad or not trainable_only)
