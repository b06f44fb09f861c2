"""Factor layouts of Monarch matrices: size factorisations and argument checks.

Layout (the Monarch authors' public code, so weights interchange with it):
    x  : (..., n)        with n = k·p
    w1 : (k, q, p)       k blocks, each q×p, applied to the k contiguous length-p pieces of x
    w2 : (l, s, r)       l blocks, each s×r, with l·r = k·q
    y  : (..., s·l)      output index = t·l + a for row t of block a

For a square n×n Monarch matrix with sizes (b1, b2), n = b1·b2, the canonical layout is
w1 : (b1, b2, b2) and w2 : (b2, b1, b1) (see `square_layout`).
"""
from __future__ import annotations

import math

import torch


def factor_pair(n: int, sizes: tuple[int, int] | None = None) -> tuple[int, int]:
    """Return (b1, b2) with b1·b2 = n, defaulting to the pair closest to √n (b1 ≤ b2).

    Raises ValueError for n without a non-trivial factorisation (n < 4 or prime): such a size has no
    Monarch structure; pad the signal to a composite size or use a dense transform instead.
    """
    n = int(n)
    if sizes is not None:
        b1, b2 = (int(v) for v in sizes)
        if b1 < 1 or b2 < 1 or b1 * b2 != n:
            raise ValueError(
                f"sizes={tuple(sizes)} do not factor n={n}: expected two positive integers (b1, b2) with "
                f"b1*b2 == n, e.g. {_suggest(n)}"
            )
        return b1, b2
    b1 = max((d for d in range(1, math.isqrt(max(n, 1)) + 1) if n % d == 0), default=1)
    if n < 4 or b1 == 1:
        raise ValueError(
            f"n={n} has no Monarch factorisation (it is {'prime' if n > 1 else 'too small'}): a Monarch "
            f"matrix needs n = b1*b2 with b1, b2 > 1. Pad the signal to a composite size (e.g. {n + 1 if n > 2 else 4}) "
            f"or use the 'dense' kind for this axis."
        )
    return b1, n // b1


def _suggest(n: int) -> str:
    try:
        return str(factor_pair(n))
    except ValueError:
        return "a composite n (this n has no factorisation)"


def square_layout(n: int, sizes: tuple[int, int] | None = None) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Shapes (w1_shape, w2_shape) of the canonical square n×n Monarch layout for sizes (b1, b2)."""
    b1, b2 = factor_pair(n, sizes)
    return (b1, b2, b2), (b2, b1, b1)


def check_factors(w1: torch.Tensor, w2: torch.Tensor) -> tuple[int, int, int, int, int, int]:
    """Validate factor shapes/dtypes and return (k, q, p, l, s, r)."""
    if w1.dim() != 3 or w2.dim() != 3:
        raise ValueError(
            f"Monarch factors must be 3-D: expected w1 (k, q, p) and w2 (l, s, r), "
            f"got w1 {tuple(w1.shape)} and w2 {tuple(w2.shape)}"
        )
    k, q, p = w1.shape
    l, s, r = w2.shape
    if l * r != k * q:
        raise ValueError(
            f"incompatible Monarch factors: w1 {tuple(w1.shape)} produces k*q={k * q} intermediate values but "
            f"w2 {tuple(w2.shape)} consumes l*r={l * r}; expected w2 of shape (l, s, r) with l*r == {k * q}"
        )
    if w1.dtype != w2.dtype:
        raise TypeError(f"Monarch factors must share a dtype: w1 is {w1.dtype}, w2 is {w2.dtype}")
    if w1.device != w2.device:
        raise ValueError(f"Monarch factors are on different devices: w1 on {w1.device}, w2 on {w2.device}")
    return k, q, p, l, s, r


def check_input(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, n_expected: int, what: str = "x") -> None:
    """Check that x is (..., n_expected) and matches the factors' dtype and device."""
    if x.dim() < 1 or x.shape[-1] != n_expected:
        raise ValueError(
            f"{what} has shape {tuple(x.shape)} but the Monarch factors w1 {tuple(w1.shape)}, w2 {tuple(w2.shape)} "
            f"expect {what} of shape (..., {n_expected})"
        )
    if x.dtype != w1.dtype:
        raise TypeError(
            f"{what} is {x.dtype} but the factors are {w1.dtype}: cast one of them (e.g. x.to(w1.dtype))"
        )
    if x.device != w1.device:
        raise ValueError(f"{what} is on {x.device} but the factors are on {w1.device}")
