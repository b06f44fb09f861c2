import numpy as np
import sigpy as sp
import sigpy.mri as mr
import torch

from mri.data.transforms import fft2c, ifft2c, rss, sense_adjoint


def _crandn(rng, *shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


def test_fft2c_matches_sigpy_and_torch_on_odd_and_even_shapes():
    rng = np.random.default_rng(0)
    for shape in [(3, 8, 8), (2, 7, 10)]:
        x = _crandn(rng, *shape)
        ref = sp.fft(x, axes=(-2, -1))
        np.testing.assert_allclose(fft2c(x), ref, atol=1e-5)
        t = torch.fft.fftshift(torch.fft.fft2(torch.fft.ifftshift(torch.from_numpy(x), dim=(-2, -1)), norm="ortho"),
                               dim=(-2, -1))
        np.testing.assert_allclose(fft2c(x), t.numpy(), atol=1e-5)
        np.testing.assert_allclose(ifft2c(fft2c(x)), x, atol=1e-5)
        assert fft2c(x).dtype == np.complex64


def test_sense_adjoint_matches_sigpy_sense_linop_with_mask():
    rng = np.random.default_rng(1)
    coils, h, w = 3, 12, 10
    maps, y = _crandn(rng, coils, h, w), _crandn(rng, coils, h, w)
    mask = (rng.uniform(size=(h, w)) < 0.4).astype(np.float32)
    ref = mr.linop.Sense(maps, weights=mask).H(y)  # sigpy applies the weights once more on y
    np.testing.assert_allclose(sense_adjoint(y * mask, maps, mask), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rss(maps), np.sqrt((np.abs(maps) ** 2).sum(0)), rtol=1e-6)
