"""The Monarch multiply y = M x (PyTorch path), its adjoint, and the dense matrix it represents.

The PyTorch path is two batched matmuls with the permutation between them done as one strided
copy; autograd differentiates it directly (bmm, views and copies only, so nothing is saved twice).
CUDA tensors go to the Triton kernels (`monarch_core.kernels`) unless told otherwise: see
`monarch_core.backend`.
"""
from __future__ import annotations

import torch

from .backend import resolve_backend
from .factors import check_factors, check_input


def monarch_multiply(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, backend: str | None = None,
                     precision: str | None = None) -> torch.Tensor:
    """Apply the Monarch matrix given by (w1, w2) to the last axis of x.

    Args:
        x: (..., n) with n = k·p; real or complex, same dtype as the factors.
        w1: (k, q, p) first block-diagonal factor.
        w2: (l, s, r) second block-diagonal factor, l·r = k·q.
        backend: "torch", "triton", "auto" or None (environment variable MONARCH_BACKEND, else auto).
        precision: fp32/complex64 products on the Triton path: "ieee" (default, exact fp32), "tf32x3"
            or "tf32" (fast, ~1e-3 relative error); None reads MONARCH_FP32_PRECISION. The PyTorch
            path follows torch's own matmul precision settings.

    Returns:
        y: (..., s·l) with y = x @ monarch_to_dense(w1, w2).T.
    """
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(x, w1, w2, k * p)
    if resolve_backend(backend, x, w1, w2) == "triton":  # unsupported calls fall back with a one-time warning
        from .kernels import monarch_multiply_triton

        return monarch_multiply_triton(x, w1, w2, precision=precision)
    return monarch_multiply_torch(x, w1, w2)


def monarch_multiply_torch(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """PyTorch path of `monarch_multiply` (no argument checks; see there for shapes)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    batch_shape = x.shape[:-1]
    xb = x.reshape(-1, k, p)
    batch = xb.shape[0]
    # Block j of the first factor acts on x[:, j, :]: one bmm over the k blocks, batch as rows.
    # CPU bmm is many times slower on batch-strided operands than the copy that makes them
    # contiguous, so each bmm gets a contiguous (blocks, batch, features) operand.
    z = torch.bmm(xb.transpose(0, 1).contiguous(), w1.transpose(1, 2))  # (k, B, q)
    # The permutation P: the k·q intermediate values of each row, read as (r, l), transposed to (l, r).
    if r == k and l == q:  # canonical layout: P is a plain transpose of (k, q)
        z = z.permute(2, 1, 0).contiguous()  # (l, B, r)
    else:
        z = z.transpose(0, 1).reshape(batch, r, l).permute(2, 0, 1).contiguous()  # (l, B, r)
    y = torch.bmm(z, w2.transpose(1, 2))  # (l, B, s)
    # Output index t·l + a for row t of block a.
    return y.permute(1, 2, 0).reshape(*batch_shape, s * l)


def monarch_multiply_adjoint(y: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, conjugate: bool = True) -> torch.Tensor:
    """Apply Mᴴ (or Mᵀ with conjugate=False) of the Monarch matrix (w1, w2) to the last axis of y.

    Args:
        y: (..., s·l); same dtype as the factors.
    Returns:
        x: (..., k·p) with x = y @ conj(monarch_to_dense(w1, w2)).
    """
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(y, w1, w2, s * l, what="y")
    c1, c2 = (w1.conj(), w2.conj()) if conjugate and w1.is_complex() else (w1, w2)
    batch_shape = y.shape[:-1]
    yb = y.reshape(-1, s, l)
    batch = yb.shape[0]
    z = torch.bmm(yb.permute(2, 0, 1).contiguous(), c2)  # (l, B, r): block a applies w2[a]ᵀ
    z = z.permute(1, 2, 0).reshape(batch, k, q).transpose(0, 1).contiguous()  # undo P: (k, B, q)
    x = torch.bmm(z, c1)  # (k, B, p)
    return x.transpose(0, 1).reshape(*batch_shape, k * p)


def monarch_to_dense(w1: torch.Tensor, w2: torch.Tensor) -> torch.Tensor:
    """The dense matrix M, shape (s·l, k·p), with monarch_multiply(x, w1, w2) == x @ M.T."""
    k, q, p, l, s, r = check_factors(w1, w2)
    eye = torch.eye(k * p, dtype=w1.dtype, device=w1.device)
    return monarch_multiply_torch(eye, w1, w2).T
