"""Fourier2d for every registered kind against torch.fft, and its adjoint once learned."""
import pytest
import torch

from monarch_core import TRANSFORM_KINDS as CORE_KINDS
from mri.recon.fourier import TRANSFORM_KINDS, Fourier2d


def _centred_fft2(x, inverse):
    fn = torch.fft.ifft2 if inverse else torch.fft.fft2
    return torch.fft.fftshift(fn(torch.fft.ifftshift(x, dim=(-2, -1)), norm="ortho"), dim=(-2, -1))


def test_kinds_are_the_registry():
    assert TRANSFORM_KINDS is CORE_KINDS and "diag" in TRANSFORM_KINDS


@pytest.mark.parametrize("kind", CORE_KINDS)
@pytest.mark.parametrize("dtype", [torch.complex64, torch.complex128])
@pytest.mark.parametrize("inverse", [False, True])
def test_starts_at_centred_fft_and_adjoint_holds(kind, dtype, inverse):
    g = torch.Generator().manual_seed(4)
    H, W = 12, 10
    f = Fourier2d((H, W), kind, inverse=inverse, dtype=dtype)
    x = torch.randn(2, H, W, dtype=dtype, generator=g)
    tol = 1e-5 if dtype == torch.complex64 else 1e-12
    assert f(x).dtype == dtype
    torch.testing.assert_close(f(x), _centred_fft2(x, inverse), atol=tol, rtol=tol)
    torch.testing.assert_close(f.adjoint(x), _centred_fft2(x, not inverse), atol=tol, rtol=tol)
    with torch.no_grad():  # once learned, the adjoint is still the conjugate transpose
        for p in f.parameters():
            p.add_(0.1 * torch.randn(p.shape, dtype=p.dtype, generator=g))
    y = torch.randn(2, H, W, dtype=dtype, generator=g)
    lhs, rhs = torch.vdot(f(x).flatten(), y.flatten()), torch.vdot(x.flatten(), f.adjoint(y).flatten())
    assert abs(lhs - rhs) < 1e-4 * abs(lhs)


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="one of"):
        Fourier2d((8, 8), "wavelet")
