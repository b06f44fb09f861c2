"""Exact Monarch factorisation of the DFT (the four-step FFT of Bailey, 1990).

For n = b1·b2, write the input index m = b1·i + j (i ∈ [b2], j ∈ [b1]) and the output index
o = t·b2 + c (c ∈ [b2], t ∈ [b1]). Then ω^{m·o} = ω_{b2}^{i·c} · ω_n^{j·c} · ω_{b1}^{j·t}, so after the
input permutation perm[j·b2 + i] = b1·i + j the DFT is the square Monarch matrix with

    w1[j, c, i] = ω^{b1·i·c + j·c}      (size-b2 DFTs with the twiddles folded in)
    w2[c, t, j] = ω^{b2·j·t}            (size-b1 DFTs)

The centred transform fftshift ∘ F ∘ ifftshift has entries ω^{(o−h)(m−h)}, h = n // 2: the same
matrix with a phase on each input column and each output row, which the factors absorb. All
exponents are reduced modulo n as integers and the phases evaluated in float64, so complex128
factors are accurate to ~1e-15.
"""
from __future__ import annotations

import math

import torch

from .factors import factor_pair

NORMS = ("backward", "ortho", "forward")


def dft_scale(n: int, inverse: bool, norm: str) -> float:
    """The scalar torch.fft applies for this direction and norm."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if norm == "ortho":
        return 1.0 / math.sqrt(n)
    scaled = (norm == "backward") == inverse  # ifft scales by 1/n under "backward", fft under "forward"
    return 1.0 / n if scaled else 1.0


def _phase(exponent: torch.Tensor, n: int, sign: int) -> torch.Tensor:
    """ω^exponent for integer exponents, ω = exp(sign·2πi/n), in complex128."""
    angle = (sign * 2.0 * math.pi / n) * torch.remainder(exponent, n).to(torch.float64)
    return torch.polar(torch.ones_like(angle), angle)


def dft_matrix(n: int, inverse: bool = False, norm: str = "backward", centered: bool = False,
               dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    """The dense (n, n) matrix of torch.fft.fft / ifft (centred: fftshift∘F∘ifftshift) along one axis."""
    sign = 1 if inverse else -1
    idx = torch.arange(n, dtype=torch.int64, device=device)
    h = n // 2 if centered else 0
    # (o − h)(m − h) mod n; int64 products are exact for every practical n
    e = (idx[:, None] - h) * (idx[None, :] - h)
    return (_phase(e, n, sign) * dft_scale(n, inverse, norm)).to(dtype)


def dft_monarch(n: int, inverse: bool = False, norm: str = "backward", centered: bool = False,
                dtype: torch.dtype = torch.complex64, sizes: tuple[int, int] | None = None, device=None):
    """Monarch factors of the DFT along one axis.

    Returns:
        (perm, w1, w2) with perm (n,) int64, w1 (b1, b2, b2), w2 (b2, b1, b1) such that
        monarch_multiply(x[..., perm], w1, w2) == torch.fft.fft(x, norm=norm) (ifft if inverse;
        fftshift(fft(ifftshift(x))) if centered).
    Raises:
        ValueError for an n without factorisation (prime): pad or use a dense transform.
    """
    if not dtype.is_complex:
        raise TypeError(f"the DFT is complex: dtype must be torch.complex64 or torch.complex128, got {dtype}")
    b1, b2 = factor_pair(n, sizes)
    sign = 1 if inverse else -1
    h = n // 2 if centered else 0
    ar = lambda m: torch.arange(m, dtype=torch.int64, device=device)  # noqa: E731
    j, c, i = ar(b1)[:, None, None], ar(b2)[None, :, None], ar(b2)[None, None, :]
    m_in = b1 * i + j  # natural input index of w1[j, :, i]
    e1 = b1 * i * c + j * c - h * m_in + h * h  # input phase ω^{-h·m + h²} of the centred form
    cc, t, jj = ar(b2)[:, None, None], ar(b1)[None, :, None], ar(b1)[None, None, :]
    e2 = b2 * jj * t - h * (t * b2 + cc)  # output phase ω^{-h·o}
    root = math.sqrt(dft_scale(n, inverse, norm))  # split the scale evenly between the factors
    w1 = (_phase(e1, n, sign) * root).to(dtype)
    w2 = (_phase(e2, n, sign) * root).to(dtype)
    jp, ip = torch.meshgrid(ar(b1), ar(b2), indexing="ij")
    perm = (b1 * ip + jp).reshape(n)
    return perm, w1, w2
