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


def unscaled_norm(inverse: bool) -> str:
    """The torch.fft norm under which this direction applies no scale (its entries have modulus 1)."""
    return "forward" if inverse else "backward"


def dft_matrix(n: int, inverse: bool = False, norm: str = "backward", centered: bool = False,
               dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    """The dense (n, n) matrix of torch.fft.fft / ifft (centred: fftshift∘F∘ifftshift) along one axis."""
    return dft_rows(n, torch.arange(n), inverse, centered, dtype, device) * dft_scale(n, inverse, norm)


def dft_rows(n: int, rows, inverse: bool = False, centered: bool = False,
             dtype: torch.dtype = torch.complex64, device=None) -> torch.Tensor:
    """Rows `rows` (output indices, taken mod n) of the *unscaled* (I)DFT matrix: (m, n), entries of modulus 1."""
    sign = 1 if inverse else -1
    idx = torch.arange(n, dtype=torch.int64, device=device)
    out = torch.as_tensor(rows, dtype=torch.int64, device=device).remainder(n)
    h = n // 2 if centered else 0
    # (o − h)(m − h) mod n; int64 products are exact for every practical n
    e = (out[:, None] - h) * (idx[None, :] - h)
    return _phase(e, n, sign).to(dtype)


def signed_frequencies(rows, n: int, centered: bool) -> list[int]:
    """Signed frequency of each output row: o − n//2 when centred, else the representative in [−n/2, n/2).

    Row o of the centred transform is frequency o − n//2 (fftshift order); of the plain one, o mod n.
    A frequency −n/2 of an even n is the Nyquist row, whose sign is ambiguous.
    """
    h = n // 2
    if centered:
        return [int(o) % n - h for o in rows]
    return [(int(o) + h) % n - h for o in rows]


def row_indices(frequencies, n: int, centered: bool) -> list[int]:
    """Inverse of `signed_frequencies`: the output row of each signed frequency at length n."""
    h = n // 2 if centered else 0
    return [(int(f) + h) % n for f in frequencies]


def resample_rows(A: torch.Tensor, n_new: int, centered: bool = False) -> torch.Tensor:
    """Band-limited (trigonometric) interpolation of each row of A, sampled at n points, to n_new points.

    Each row is read as a periodic function of the input position (x − n//2 when centred, so the
    centred sample grid keeps its centre), expanded in its own DFT, and re-evaluated at n_new points:
    the spectrum is zero-padded (n_new > n) or truncated (n_new < n). An even n's Nyquist coefficient
    is split evenly between +n/2 and −n/2, and coefficients landing on ±n_new/2 of an even n_new are
    summed into its Nyquist bin, so real rows stay real. Exact for every row that is a pure tone of
    frequency |k| < min(n, n_new)/2 (DFT rows in particular).

    A: (..., n) complex → (..., n_new) complex, same dtype.
    """
    n = A.shape[-1]
    if centered:
        A = torch.fft.ifftshift(A, dim=-1)
    coeffs = torch.fft.fft(A, dim=-1, norm="forward")  # row(x) = Σ_k coeffs[k] e^{2πi k x / n}
    k = torch.arange(n, device=A.device)
    k = torch.where(k < (n + 1) // 2, k, k - n)  # signed; an even n's Nyquist reads −n/2
    if n % 2 == 0:  # split the Nyquist coefficient into ±n/2
        coeffs = torch.cat([coeffs, coeffs[..., n // 2: n // 2 + 1]], dim=-1)
        coeffs[..., n // 2] *= 0.5
        coeffs[..., n] *= 0.5
        k = torch.cat([k, k.new_tensor([n // 2])])
    keep = 2 * k.abs() <= n_new
    new = coeffs.new_zeros(*coeffs.shape[:-1], n_new)
    new = new.index_add(-1, k[keep].remainder(n_new), coeffs[..., keep])
    out = torch.fft.ifft(new, dim=-1, norm="forward")
    return torch.fft.fftshift(out, dim=-1) if centered else out


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
