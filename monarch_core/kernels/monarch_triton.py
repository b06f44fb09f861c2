"""The Monarch multiply on Triton: forward and backward as block GEMMs with permutations in the strides.

Layout as in monarch_core.factors: x (B, k·p), w1 (k, q, p), w2 (l, s, r), y (B, s·l). Two passes
(design choice explained in kernels/__init__.py):

    pass 1   z[b, j·q + c]  = Σ_i w1[j, c, i] · x[b, j·p + i]         x, z contiguous per block
    pass 2   y[b, t·l + a]  = Σ_α w2[a, t, α] · z[b, α·l + a]         P and the output permutation are
                                                                     the strides (1, l) of z and y
Backward (gy = ∂L/∂y; conj(·) only matters for complex):
    gz[b, α·l + a] = Σ_t conj(w2[a, t, α]) · gy[b, t·l + a]
    gx[b, j·p + i] = Σ_c conj(w1[j, c, i]) · gz[b, j·q + c]
    gw2[a, t, α]   = Σ_b gy[b, t·l + a] · conj(z[b, α·l + a])
    gw1[j, c, i]   = Σ_b gz[b, j·q + c] · conj(x[b, j·p + i])
The intermediate z (B × k·q, in the input dtype, like the PyTorch path) is saved for backward.

`input_transposed=True` reads x[b, i·k + j] instead of x[b, j·p + i]: the input permutation of the
exact DFT factors (monarch_core.dft_monarch) as strides, so a Monarch DFT needs no gather copy.
"""
from __future__ import annotations

import torch

from ..factors import check_factors, check_input
from ..backend import with_fallback
from .block_gemm import block_gemm, block_weight_grad
from .one_pass import _OnePassMultiply, layout_applies
from .support import resolve_precision, unsupported_reason


def _planes(t: torch.Tensor | None):
    """(real, imag) strided views of a complex tensor; (t, None) for a real one."""
    if t is None or not t.is_complex():
        return t, None
    v = torch.view_as_real(t.resolve_conj())
    return v[..., 0], v[..., 1]


def _strides2(t: torch.Tensor):
    return t.stride(0), t.stride(1)


def _x_view(x2: torch.Tensor, k: int, p: int, transposed: bool):
    """(batch, block j, inner i) strides of x viewed as (B, k, p) (or its transposed input order)."""
    sb, se = _strides2(x2)
    return (sb, se, k * se) if transposed else (sb, p * se, se)


def _sizes(w1, w2):
    k, q, p = w1.shape
    l, s, r = w2.shape
    return k, q, p, l, s, r


def intermediate(xp, w1p, precision: str, transposed: bool) -> torch.Tensor:
    """Pass 1: the intermediate z planes (P, B, k·q) = blockdiag(w1) x (input dtype)."""
    k, q, p = w1p[0].shape
    batch = xp[0].shape[0]
    planes = 1 if xp[1] is None else 2
    z = torch.empty((planes, batch, k * q), dtype=xp[0].dtype, device=xp[0].device)
    zp = (z[0], z[1] if planes == 2 else None)
    block_gemm(xp, _x_view(xp[0], k, p, transposed), w1p, w1p[0].stride(), zp, (k * q, q, 1),
               batch=batch, blocks=k, n=q, k=p, precision=precision)
    return z


def monarch_forward(xp, w1p, w2p, yp, precision: str, transposed: bool) -> torch.Tensor:
    """Write y = M x into the planes yp (each (B, s·l)); return the intermediate z planes (P, B, k·q)."""
    k, q, p, l, s, r = _sizes(w1p[0], w2p[0])
    batch = xp[0].shape[0]
    z = intermediate(xp, w1p, precision, transposed)
    zp = (z[0], z[1] if xp[1] is not None else None)
    w2v = w2p[0].stride()
    sb, se = _strides2(yp[0])
    block_gemm(zp, (k * q, 1, l), w2p, w2v, yp, (sb, se, l * se),
               batch=batch, blocks=l, n=s, k=r, precision=precision)
    return z


def monarch_backward(gyp, xp, z, w1p, w2p, gxp, precision: str, transposed: bool, need_w1: bool, need_w2: bool):
    """Write gx into the planes gxp (when not None); return fp32 planes of (gw1, gw2) (None where not needed).
    z (the forward's intermediate) is only read for gw2; with need_w2=False it may be None (the adjoint)."""
    k, q, p, l, s, r = _sizes(w1p[0], w2p[0])
    batch = gyp[0].shape[0]
    planes = 1 if gyp[1] is None else 2
    zp = (z[0], z[1] if planes == 2 else None) if z is not None else None
    sb, se = _strides2(gyp[0])
    gy_view = (sb, se, l * se)  # gy[b, t·l + a] as (batch, block a, inner t)
    gw1 = gw2 = None
    if need_w2:
        gw2 = block_weight_grad(gyp, gy_view, zp, (k * q, 1, l), batch=batch, blocks=l, n=s, k=r, precision=precision)
    if gxp[0] is None and not need_w1:
        return gw1, gw2
    gz = torch.empty((planes, batch, k * q), dtype=gyp[0].dtype, device=gyp[0].device)
    gzp = (gz[0], gz[1] if planes == 2 else None)
    w2s = w2p[0].stride()
    block_gemm(gyp, gy_view, w2p, (w2s[0], w2s[2], w2s[1]), gzp, (k * q, 1, l),
               batch=batch, blocks=l, n=r, k=s, conj_w=True, precision=precision)
    if gxp[0] is not None:
        w1s = w1p[0].stride()
        block_gemm(gzp, (k * q, q, 1), w1p, (w1s[0], w1s[2], w1s[1]), gxp, _x_view(gxp[0], k, p, transposed),
                   batch=batch, blocks=k, n=p, k=q, conj_w=True, precision=precision)
    if need_w1:
        gw1 = block_weight_grad(gzp, (k * q, q, 1), xp, _x_view(xp[0], k, p, transposed),
                                batch=batch, blocks=k, n=q, k=p, precision=precision)
    return gw1, gw2


def _join(planes, dtype):
    """fp32 (re, im) planes → a tensor of dtype (complex when im is given)."""
    if planes is None:
        return None
    re, im = planes
    if im is None:
        return re.to(dtype)
    return torch.complex(re, im).to(dtype)


class _MonarchMultiply(torch.autograd.Function):
    """y = M x for real or complex64 tensors x (B, n), w1, w2; complex is split into planes inside."""

    @staticmethod
    def forward(ctx, x, w1, w2, precision, transposed):
        l, s = w2.shape[0], w2.shape[1]
        y = torch.empty((x.shape[0], s * l), dtype=x.dtype, device=x.device)
        z = monarch_forward(_planes(x), _planes(w1), _planes(w2), _planes(y), precision, transposed)
        ctx.save_for_backward(x, w1, w2, z)
        ctx.precision, ctx.transposed = precision, transposed
        return y

    @staticmethod
    def backward(ctx, gy):
        x, w1, w2, z = ctx.saved_tensors
        need_x, need_w1, need_w2 = ctx.needs_input_grad[:3]
        gx = torch.empty_like(x, memory_format=torch.contiguous_format) if need_x else None
        gw1, gw2 = monarch_backward(_planes(gy), _planes(x), z, _planes(w1), _planes(w2), _planes(gx),
                                    ctx.precision, ctx.transposed, need_w1, need_w2)
        return gx, _join(gw1, w1.dtype), _join(gw2, w2.dtype), None, None


class _MonarchMultiplyPlanar(torch.autograd.Function):
    """(yr, yi) = M (xr + i·xi) with M = (w1r + i·w1i, w2r + i·w2i), all real planes of one dtype."""

    @staticmethod
    def forward(ctx, xr, xi, w1r, w1i, w2r, w2i, precision, transposed):
        l, s = w2r.shape[0], w2r.shape[1]
        yr = xr.new_empty((xr.shape[0], s * l))
        yi = torch.empty_like(yr)
        z = monarch_forward((xr, xi), (w1r, w1i), (w2r, w2i), (yr, yi), precision, transposed)
        ctx.save_for_backward(xr, xi, w1r, w1i, w2r, w2i, z)
        ctx.precision, ctx.transposed = precision, transposed
        return yr, yi

    @staticmethod
    def backward(ctx, gyr, gyi):
        xr, xi, w1r, w1i, w2r, w2i, z = ctx.saved_tensors
        needs = ctx.needs_input_grad
        gx = (torch.empty_like(xr, memory_format=torch.contiguous_format),
              torch.empty_like(xi, memory_format=torch.contiguous_format)) if needs[0] or needs[1] else (None, None)
        gw1, gw2 = monarch_backward((gyr, gyi), (xr, xi), z, (w1r, w1i), (w2r, w2i), gx, ctx.precision,
                                    ctx.transposed, needs[2] or needs[3], needs[4] or needs[5])
        gw1 = (None, None) if gw1 is None else tuple(g.to(w1r.dtype) for g in gw1)
        gw2 = (None, None) if gw2 is None else tuple(g.to(w2r.dtype) for g in gw2)
        return (*gx, *gw1, *gw2, None, None)


class _MonarchAdjoint(torch.autograd.Function):
    """x = Mᴴ y (the forward's input gradient pass); differentiable in y only (∂y = M ∂x)."""

    @staticmethod
    def forward(ctx, y, w1, w2, precision):
        k, p = w1.shape[0], w1.shape[2]
        x = torch.empty((y.shape[0], k * p), dtype=y.dtype, device=y.device)
        monarch_backward(_planes(y), (None, None), None, _planes(w1), _planes(w2), _planes(x), precision,
                         False, need_w1=False, need_w2=False)
        ctx.save_for_backward(w1, w2)
        ctx.precision = precision
        return x

    @staticmethod
    def backward(ctx, gx):
        w1, w2 = ctx.saved_tensors
        l, s = w2.shape[0], w2.shape[1]
        gy = torch.empty((gx.shape[0], s * l), dtype=gx.dtype, device=gx.device)
        monarch_forward(_planes(gx.contiguous()), _planes(w1), _planes(w2), _planes(gy), ctx.precision, False)
        return gy, None, None, None


def _check_support(x, w1, w2):
    reason = unsupported_reason(x, w1, w2)
    if reason is not None:
        raise RuntimeError(f"monarch_multiply_triton cannot run this call: {reason}. Use monarch_multiply "
                           f"(which falls back to the PyTorch path) or backend='torch'.")


def monarch_multiply_triton(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, precision: str | None = None,
                            input_transposed: bool = False) -> torch.Tensor:
    """Triton path of `monarch_multiply`: y = M x along the last axis, differentiable in x, w1 and w2.

    Args:
        x: (..., n), n = k·p; float32, bfloat16, float16 or complex64; CUDA (or CPU under TRITON_INTERPRET=1).
        w1: (k, q, p), w2: (l, s, r) with l·r = k·q; same dtype and device as x.
        precision: fp32/complex64 dot precision "ieee" | "tf32x3" | "tf32" (default: MONARCH_FP32_PRECISION,
            else "tf32x3"); ignored for 16-bit dtypes. Real dtypes run on the one-pass forward where
            `one_pass.layout_applies` says so (see kernels/__init__.py).
        input_transposed: read x as x[..., i·k + j] for block j, element i (the DFT input permutation).
    Returns:
        y: (..., s·l), same dtype as x.
    Raises:
        RuntimeError when the kernels cannot take the call (dtype, device); `monarch_multiply` falls back instead.
    """
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(x, w1, w2, k * p)
    _check_support(x, w1, w2)
    x2 = x.reshape(-1, k * p)
    resolved = resolve_precision(precision, x.dtype)

    def two_pass():
        return _MonarchMultiply.apply(x2, w1, w2, resolved, bool(input_transposed))

    if layout_applies(w1.shape, w2.shape, x.dtype):  # one pass over memory; two-pass if it fails to run
        y = with_fallback(lambda: _OnePassMultiply.apply(x2, w1, w2, resolved, bool(input_transposed)), two_pass,
                          "monarch_multiply (one-pass kernel)", to="the two-pass Triton kernels")
    else:
        y = two_pass()
    return y.reshape(*x.shape[:-1], s * l)


def monarch_multiply_two_pass(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, precision: str | None = None,
                              input_transposed: bool = False) -> torch.Tensor:
    """`monarch_multiply_triton` on the two-pass kernels whatever the layout (never the one-pass forward):
    the benchmarks' `triton_two_pass` row. Same arguments, result and errors as `monarch_multiply_triton`."""
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(x, w1, w2, k * p)
    _check_support(x, w1, w2)
    y = _MonarchMultiply.apply(x.reshape(-1, k * p), w1, w2, resolve_precision(precision, x.dtype),
                               bool(input_transposed))
    return y.reshape(*x.shape[:-1], s * l)


def monarch_multiply_adjoint_triton(y: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor,
                                    precision: str | None = None) -> torch.Tensor:
    """Triton path of `monarch_multiply_adjoint` (conjugate=True): x = Mᴴ y along the last axis, y (..., s·l)
    → x (..., k·p). Differentiable in y; factor gradients of the adjoint are not implemented here
    (`monarch_multiply_adjoint` routes calls whose factors need grads to the PyTorch path)."""
    k, q, p, l, s, r = check_factors(w1, w2)
    check_input(y, w1, w2, s * l, what="y")
    _check_support(y, w1, w2)
    x = _MonarchAdjoint.apply(y.reshape(-1, s * l), w1, w2, resolve_precision(precision, y.dtype))
    return x.reshape(*y.shape[:-1], k * p)


def monarch_multiply_planar(xr: torch.Tensor, xi: torch.Tensor, w1r: torch.Tensor, w1i: torch.Tensor,
                            w2r: torch.Tensor, w2i: torch.Tensor, precision: str | None = None,
                            input_transposed: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Complex Monarch multiply on separate real/imaginary planes (any supported real dtype, e.g. bf16).

    (yr + i·yi) = M (xr + i·xi) with M given by the complex factors (w1r + i·w1i, w2r + i·w2i); shapes as in
    `monarch_multiply_triton`, all six tensors real with one dtype. This is the 16-bit complex path
    (torch has no bf16 complex dtype), e.g. a bf16 Monarch DFT. Differentiable in all six inputs.
    Returns (yr, yi), each (..., s·l).
    """
    k, q, p, l, s, r = check_factors(w1r, w2r)
    check_factors(w1i, w2i)
    if w1i.shape != w1r.shape or w2i.shape != w2r.shape or xi.shape != xr.shape:
        raise ValueError(f"real and imaginary planes must match: x {tuple(xr.shape)} vs {tuple(xi.shape)}, "
                         f"w1 {tuple(w1r.shape)} vs {tuple(w1i.shape)}, w2 {tuple(w2r.shape)} vs {tuple(w2i.shape)}")
    for name, t in (("xr", xr), ("xi", xi), ("w1i", w1i), ("w2r", w2r), ("w2i", w2i)):
        if t.dtype != w1r.dtype or t.is_complex():
            raise TypeError(f"{name} is {t.dtype}; all planes must be real tensors of w1r's dtype {w1r.dtype}")
    check_input(xr, w1r, w2r, k * p, what="xr")
    _check_support(xr, w1r, w2r)
    batch_shape = xr.shape[:-1]
    yr, yi = _MonarchMultiplyPlanar.apply(xr.reshape(-1, k * p), xi.reshape(-1, k * p), w1r, w1i, w2r, w2i,
                                          resolve_precision(precision, xr.dtype), bool(input_transposed))
    return yr.reshape(*batch_shape, s * l), yi.reshape(*batch_shape, s * l)
