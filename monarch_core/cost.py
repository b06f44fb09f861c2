"""Parameter and FLOP counts of the transform kinds, for benchmarks and reports.

FLOPs are real floating-point operations per transformed vector: a complex multiply-add counts 8,
a real one 2; the FFT uses the conventional 5·n·log2(n) for complex input. The per-kind counts live
with the kinds (`monarch_core.transform_kinds`); `transform_cost` looks them up.
"""
from __future__ import annotations

from torch import nn


def monarch_cost(w1_shape, w2_shape, complex_valued: bool = False) -> dict:
    """{"params", "flops"} of one Monarch multiply with these factor shapes (real numbers counted)."""
    k, q, p = w1_shape
    l, s, r = w2_shape
    entries = k * q * p + l * s * r
    per_entry = 2 if complex_valued else 1
    return {"params": entries * per_entry, "flops": entries * (8 if complex_valued else 2)}


def transform_cost(kind: str, n: int, sizes=None, rows=None) -> dict:
    """{"params", "flops"} of a complex length-n transform of this kind keeping `rows` (see LearnableDFT).

    rows: None (all n rows), an int m (rows 0..m−1) or the kept rows themselves (a Monarch transform's
    cost depends on which rows: it stores the second-factor rows holding a kept frequency).
    """
    from .transform_kinds import transform_kind  # the registry imports this module

    impl = transform_kind(kind)
    return {"params": impl.parameter_count(n, rows, sizes), "flops": impl.flops(n, rows, sizes)}


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of (real) parameters of a module; complex parameters count twice."""
    return sum(p.numel() * (2 if p.is_complex() else 1) for p in module.parameters()
               if p.requires_grad or not trainable_only)
