"""Projection of a dense matrix onto Monarch form (Dao et al. 2022, Theorem 1 / Algorithm 1).

In the layout of `monarch_core.factors`, intermediate value f ∈ [k·q] links input block j = f // q
(row c = f % q of w1[j]) with output block a = f % l (column α = f // l of w2[a]), so

    M[t·l + a, j·p + i] = Σ_{f ∈ F(a, j)} w2[a, t, α(f)] · w1[j, c(f), i].

Each (a, j) block of M (s × p) is therefore a sum of |F(a, j)| rank-one terms, and distinct blocks
share no parameters: the Frobenius-optimal factors are the top |F(a, j)| singular pairs of each
block of A (Eckart–Young), computed with one batched SVD. For the square layout |F(a, j)| = 1 and
this is exactly Algorithm 1; it also covers non-square blocks and rectangular layouts.
"""
from __future__ import annotations

import torch

from .factors import square_layout


def project(A: torch.Tensor, sizes: tuple[int, int] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Frobenius-optimal Monarch approximation of a square matrix.

    Args:
        A: (n, n) real or complex.
        sizes: (b1, b2) with b1·b2 = n; default: the pair closest to √n.
    Returns:
        (w1, w2) of shapes (b1, b2, b2) and (b2, b1, b1), exact when A is Monarch of that layout.
    """
    if A.dim() != 2 or A.shape[0] != A.shape[1]:
        raise ValueError(
            f"project expects a square matrix (n, n), got {tuple(A.shape)}; for rectangular matrices use "
            f"project_to_layout(A, w1_shape, w2_shape)"
        )
    w1_shape, w2_shape = square_layout(A.shape[0], sizes)
    return project_to_layout(A, w1_shape, w2_shape)


def project_to_layout(A: torch.Tensor, w1_shape, w2_shape) -> tuple[torch.Tensor, torch.Tensor]:
    """Frobenius-optimal Monarch factors of the given layout for A of shape (s·l, k·p)."""
    k, q, p = (int(v) for v in w1_shape)
    l, s, r = (int(v) for v in w2_shape)
    if l * r != k * q:
        raise ValueError(f"incompatible layout: w1 {tuple(w1_shape)} gives k*q={k * q}, w2 {tuple(w2_shape)} needs l*r={l * r}")
    if A.shape != (s * l, k * p):
        raise ValueError(
            f"A has shape {tuple(A.shape)} but factors w1 {tuple(w1_shape)}, w2 {tuple(w2_shape)} "
            f"describe a ({s * l}, {k * p}) matrix"
        )
    if not torch.isfinite(A).all():
        raise ValueError("A contains NaN or Inf values; the projection needs a finite matrix")
    blocks = A.reshape(s, l, k, p).permute(1, 2, 0, 3)  # (a, j, t, i): block (a, j) is s × p
    U, S, Vh = torch.linalg.svd(blocks, full_matrices=False)  # (l, k, s, m), (l, k, m), (l, k, m, p)
    m = S.shape[-1]

    f = torch.arange(k * q, device=A.device)
    j, c, alpha, a = f // q, f % q, f // l, f % l
    # rank slot of f inside its group F(a, j): position among the f's sharing (a, j), in increasing f
    group = a * k + j
    order = torch.argsort(group * (k * q) + f)
    sorted_group = group[order]
    first = torch.searchsorted(sorted_group, sorted_group)
    rank = torch.empty_like(f)
    rank[order] = torch.arange(k * q, device=A.device) - first
    usable = rank < m  # a group can use at most min(s, p) rank-one terms; extra slots stay zero
    slot = rank.clamp(max=m - 1)

    root = S[a, j, slot].sqrt() * usable  # (kq,)
    w1 = torch.zeros(k, q, p, dtype=A.dtype, device=A.device)
    w2 = torch.zeros(l, s, r, dtype=A.dtype, device=A.device)
    w1[j, c, :] = Vh[a, j, slot, :] * root[:, None].to(A.dtype)
    w2[a, :, alpha] = U[a, j, :, slot] * root[:, None].to(A.dtype)
    return w1, w2
