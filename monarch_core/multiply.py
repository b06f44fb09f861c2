"""The Monarch multiply y = M x (PyTorch path), its adjoint, and the dense matrix it represents.

PyTorch path (CPU, or CUDA with backend="torch"): a custom autograd Function, `_FactoredMultiply`,
that works on batch chunks in a *feature-major* layout. Per chunk of c rows:

    zᵀ (k, q, c) = w1 (k, q, p) @ xᵀ (k, p, c)        xᵀ is a strided view of x: no copy
    yᵀ (l, s, c) = w2 (l, s, r) @ zᵀ viewed (l, r, c)  the permutation P is a view of zᵀ: no copy
    y[b, t·l + a] = yᵀ[a, t, b]                         one strided copy into the output

With the batch on the last (unit-stride) axis every bmm operand is a plain strided matrix that BLAS
reads directly (leading dimension ≠ row length), so the only permutation copy left is the output one,
and chunking keeps it, zᵀ and yᵀ in cache (the permutation copies of the naive two-bmm path were
67–70 % of its time at n ≥ 1024 once batch·n outgrows the cache). Buffers are reused across chunks
with `torch.bmm(..., out=)`. The backward is hand-written (it recomputes zᵀ chunk by chunk instead of
storing it) and gives grads for x, w1 and w2, real or complex (PyTorch's convention: ∂w = ∂y · xᴴ).

`input_transposed=True` reads x[..., i·k + j] as element i of block j: the input permutation of the
exact DFT factors (`dft_monarch`'s perm) folded into strides, so a Monarch DFT needs no gather.

CUDA tensors go to the Triton kernels (`monarch_core.kernels`) unless told otherwise: see
`monarch_core.backend`; the first call of each kernel configuration is checked against this path
(`monarch_core.self_check`).
"""
from __future__ import annotations

import torch
from torch.autograd.function import once_differentiable

from .backend import resolve_backend, with_fallback
from .factors import check_factors, check_input

# Rows per chunk: about 2^17 intermediate values (512 KiB in fp32) keeps a chunk's zᵀ and yᵀ in L2,
# within [32, 1024] rows so that small n does not pay Python overhead per tiny chunk.
CHUNK_ELEMENTS = 1 << 17
MIN_CHUNK, MAX_CHUNK = 32, 1024


def monarch_multiply(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, backend: str | None = None,
                     precision: str | None = None, input_transposed: bool = False) -> torch.Tensor:
    """Apply the Monarch matrix given by (w1, w2) to the last axis of x.

    Args:
        x: (..., n) with n = k·p; real or complex, same dtype as the factors.
        w1: (k, q, p) first block-diagonal factor.
        w2: (l, s, r) second block-diagonal factor, l·r = k·q.
        backend: "torch", "triton", "auto" or None (environment variable MONARCH_BACKEND, else auto).
        precision: fp32/complex64 products on the Triton path: "tf32x3" (default on the GPU: three TF32
            tensor-core products, fp32-grade accuracy), "ieee" (exact fp32 FMAs, slower) or "tf32"
            (fast, ~1e-3 relative error); None reads MONARCH_FP32_PRECISION. The PyTorch path follows
            torch's own matmul precision settings.
        input_transposed: read x[..., i·k + j] as element i of block j (instead of x[..., j·p + i]):
            the input permutation of `dft_monarch`, i.e. monarch_multiply(x, w1, w2,
            input_transposed=True) == monarch_multiply(x[..., perm], w1, w2) without the gather.

    Returns:
        y: (..., s·l) with y = x @ monarch_to_dense(w1, w2).T (x permuted first when input_transposed).
    """
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(x, w1, w2, k * p)
    if resolve_backend(backend, x, w1, w2) == "triton":  # unsupported calls fall back with a one-time warning
        from .kernels import monarch_multiply_triton
        from .self_check import trusted

        def torch_path(x, w1, w2):
            return monarch_multiply_torch(x, w1, w2, input_transposed=input_transposed)

        def kernels(x, w1, w2):
            return with_fallback(lambda: monarch_multiply_triton(x, w1, w2, precision=precision,
                                                                 input_transposed=input_transposed),
                                 lambda: torch_path(x, w1, w2), "monarch_multiply")

        # the first call of each kernel configuration is checked against the PyTorch path (self_check.py)
        return trusted("monarch_multiply", kernels, torch_path, (x, w1, w2), precision, input_transposed)
    return monarch_multiply_torch(x, w1, w2, input_transposed=input_transposed)


def monarch_multiply_torch(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                           input_transposed: bool = False) -> torch.Tensor:
    """PyTorch path of `monarch_multiply` (no argument checks; see there for shapes)."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    batch_shape = x.shape[:-1]
    x2 = x.reshape(-1, k * p)
    if torch.is_autocast_enabled(x.device.type):  # autocast casts bmm operands: no preallocated out= buffers
        y = _two_bmm(x2, w1, w2, input_transposed)
    elif torch.is_grad_enabled() and (x.requires_grad or w1.requires_grad or w2.requires_grad):
        y = _FactoredMultiply.apply(x2, w1, w2, bool(input_transposed))
    else:
        y = factored_forward(x2, w1, w2, input_transposed)
    return y.reshape(*batch_shape, s * l)


def _chunk_rows(batch: int, n: int) -> int:
    return min(batch, max(MIN_CHUNK, min(MAX_CHUNK, CHUNK_ELEMENTS // max(n, 1))))


def _x_chunk_t(xc: torch.Tensor, k: int, p: int, transposed: bool) -> torch.Tensor:
    """(c, k·p) rows → the (k, p, c) view xᵀ[j, i, b] = x[b, j·p + i] (or x[b, i·k + j])."""
    c = xc.shape[0]
    return xc.view(c, p, k).permute(2, 1, 0) if transposed else xc.view(c, k, p).permute(1, 2, 0)


def _y_chunk_t(yc: torch.Tensor, s: int, l: int) -> torch.Tensor:
    """(c, s·l) rows → the (l, s, c) view yᵀ[a, t, b] = y[b, t·l + a]."""
    return yc.view(yc.shape[0], s, l).permute(2, 1, 0)


def _chunks(batch: int, rows: int):
    for start in range(0, batch, rows):
        yield start, min(rows, batch - start)


def factored_forward(x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """y (B, s·l) = M x for x2 (B, k·p) (or its transposed input order), chunked feature-major bmm."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    batch = x2.shape[0]
    y = torch.empty((batch, s * l), dtype=x2.dtype, device=x2.device)
    rows = _chunk_rows(batch, max(k * p, k * q, s * l))
    zt = torch.empty((k, q, rows), dtype=x2.dtype, device=x2.device)
    yt = torch.empty((l, s, rows), dtype=x2.dtype, device=x2.device)
    for start, c in _chunks(batch, rows):
        ztc, ytc = (zt, yt) if c == rows else (zt[..., :c], yt[..., :c])
        _bmm_into(w1, _x_chunk_t(x2[start:start + c], k, p, transposed), ztc)
        _bmm_into(w2, ztc.reshape(r, l, c).transpose(0, 1), ytc)
        _y_chunk_t(y[start:start + c], s, l).copy_(ytc)
    return y


def _bmm_into(a: torch.Tensor, b: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = a @ b; out= only when out is contiguous (the last, shorter chunk is a strided slice)."""
    if out.is_contiguous():
        return torch.bmm(a, b, out=out)
    out.copy_(torch.bmm(a, b))
    return out


class _FactoredMultiply(torch.autograd.Function):
    """y = M x on the chunked feature-major PyTorch path, with a hand-written backward.

    Backward per chunk (conj only matters for complex; gy = ∂L/∂y):
        zᵀ = w1 xᵀ (recomputed)                 gyᵀ (l, s, c) from gy (one strided copy)
        ∂w2 += gyᵀ · (P zᵀ)ᴴ                     ∂(P zᵀ) (l, r, c) = w2ᴴ gyᵀ
        ∂w1 += ∂zᵀ · conj(x)                     ∂xᵀ (k, p, c) = w1ᴴ ∂zᵀ, copied into ∂x's rows
    """

    @staticmethod
    def forward(ctx, x2, w1, w2, transposed):
        ctx.save_for_backward(x2, w1, w2)
        ctx.transposed = transposed
        return factored_forward(x2, w1, w2, transposed)

    @staticmethod
    @once_differentiable
    def backward(ctx, gy):
        x2, w1, w2 = ctx.saved_tensors
        need_x, need_w1, need_w2 = ctx.needs_input_grad[:3]
        k, q, p = w1.shape
        l, s, r = w2.shape
        batch = x2.shape[0]
        transposed = ctx.transposed
        w1h, w2h = w1.mH, w2.mH  # (k, p, q), (l, r, s)
        gx = torch.empty_like(x2, memory_format=torch.contiguous_format) if need_x else None
        gw1 = torch.zeros_like(w1) if need_w1 else None
        gw2 = torch.zeros_like(w2) if need_w2 else None
        rows = _chunk_rows(batch, max(k * p, k * q, s * l))
        for start, c in _chunks(batch, rows):
            xt = _x_chunk_t(x2[start:start + c], k, p, transposed)  # (k, p, c)
            gyt = _y_chunk_t(gy[start:start + c], s, l).contiguous()  # (l, s, c)
            if need_w2:
                zt = torch.bmm(w1, xt)  # (k, q, c)
                gw2.baddbmm_(gyt, zt.view(r, l, c).transpose(0, 1).mH)
            if not (need_x or need_w1):
                continue
            gzt = torch.bmm(w2h, gyt).transpose(0, 1).reshape(k, q, c)  # (l, r, c) → P back: (k, q, c)
            if need_w1:
                gw1.baddbmm_(gzt, xt.mH)
            if need_x:
                _x_chunk_t(gx[start:start + c], k, p, transposed).copy_(torch.bmm(w1h, gzt))
        return gx, gw1, gw2, None


def _two_bmm(x2: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, transposed: bool = False) -> torch.Tensor:
    """The plain two-bmm path (batch-major, permutation copies; autograd differentiates it): used under
    autocast and as the baseline of `run.py bench monarch`."""
    k, q, p = w1.shape
    l, s, r = w2.shape
    batch = x2.shape[0]
    xb = x2.view(batch, p, k).transpose(1, 2) if transposed else x2.view(batch, k, p)
    z = torch.bmm(xb.transpose(0, 1).contiguous(), w1.transpose(1, 2))  # (k, B, q)
    z = z.transpose(0, 1).reshape(batch, r, l).permute(2, 0, 1).contiguous()  # P: (l, B, r)
    y = torch.bmm(z, w2.transpose(1, 2))  # (l, B, s)
    return y.permute(1, 2, 0).reshape(batch, s * l)  # output index t·l + a


def monarch_multiply_adjoint(y: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, conjugate: bool = True,
                             backend: str | None = None, precision: str | None = None) -> torch.Tensor:
    """Apply Mᴴ (or Mᵀ with conjugate=False) of the Monarch matrix (w1, w2) to the last axis of y.

    On CUDA (backend auto/triton) this runs the Triton kernels' backward, which computes Mᴴ y, unless the
    factors need gradients (the Triton adjoint is differentiable in y only); the PyTorch path applies the factors' conjugate transposes with bmm. Differentiable in y, w1 and w2.

    Args:
        y: (..., s·l); same dtype as the factors.
    Returns:
        x: (..., k·p) with x = y @ conj(monarch_to_dense(w1, w2)).
    """
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(y, w1, w2, s * l, what="y")
    weight_grads = torch.is_grad_enabled() and (w1.requires_grad or w2.requires_grad)
    if not weight_grads and resolve_backend(backend, y, w1, w2) == "triton":
        from .kernels import monarch_multiply_adjoint_triton
        from .self_check import trusted

        def torch_path(y, w1, w2):
            return monarch_multiply_adjoint(y, w1, w2, conjugate, backend="torch")

        def kernels(y, w1, w2):
            c1, c2 = (w1, w2) if conjugate or not w1.is_complex() else (w1.conj(), w2.conj())
            return with_fallback(lambda: monarch_multiply_adjoint_triton(y, c1, c2, precision=precision),
                                 lambda: torch_path(y, w1, w2), "monarch_multiply_adjoint")

        return trusted("monarch_multiply_adjoint" + ("" if conjugate else " (transpose)"), kernels, torch_path,
                       (y, w1, w2), precision)
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
