"""Model-mismatch physics (mri.data.mismatch) against direct sums, analytic shifts and true maps."""
import numpy as np
import pytest
import sigpy.mri

from common.errors import ConfigError
from mri.data.coil_maps import estimate_maps
from mri.data.masks import calibration_width
from mri.data.mismatch import (b0_kspace, delay_phase, off_resonance_map, parse_mismatch, readout_times)
from mri.data.transforms import fft2c, ifft2c, rss


def _crandn(rng, *shape):
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def test_gradient_delay_is_a_linear_phase_matching_the_shifted_dft():
    rng = np.random.default_rng(0)
    h, w, delay = 12, 10, 0.37
    image = _crandn(rng, h, w)
    delayed = fft2c(image * delay_phase(w, delay)[None, :])
    # analytic: the centred DFT evaluated at the shifted readout frequencies k_j + δ
    c = w // 2
    kx = np.arange(w)[:, None] - c + delay
    dft = np.exp(-2j * np.pi * kx * (np.arange(w)[None, :] - c) / w) / np.sqrt(w)
    rows = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(image, axes=0), axis=0, norm="ortho"), axes=0)
    np.testing.assert_allclose(delayed, rows @ dft.T, atol=1e-5)
    # ifft of the delayed k-space is the image times exp(−2πi·δ·(x − c)/W)
    np.testing.assert_allclose(ifft2c(delayed), image * np.exp(-2j * np.pi * delay * (np.arange(w) - c) / w),
                               atol=1e-5)
    # an integer delay is a circular shift of k-space along the readout
    np.testing.assert_allclose(fft2c(image * delay_phase(w, 2)[None]), np.roll(fft2c(image), -2, axis=-1),
                               atol=1e-5)


def test_b0_zero_field_is_the_fft_and_constant_field_is_the_readout_phase():
    rng = np.random.default_rng(1)
    coils, h, w = 3, 16, 12
    images = _crandn(rng, coils, h, w).astype(np.complex64)
    times = readout_times(w, 250.0)
    assert np.isclose(times[1] - times[0], 1 / (w * 250.0)) and times[w // 2] == 0
    np.testing.assert_allclose(b0_kspace(images, np.zeros((h, w)), times), fft2c(images), atol=1e-5)
    df = 40.0
    expected = fft2c(images) * np.exp(2j * np.pi * df * times)[None, None, :]
    np.testing.assert_allclose(b0_kspace(images, np.full((h, w), df), times, block_rows=5), expected, atol=1e-5)
    # a subset of columns (as after cropping a finer grid) equals those columns of the full result
    field = off_resonance_map((h, w), 80.0, rng)
    assert np.isclose(np.abs(field).max(), 80.0)
    full = b0_kspace(images, field, times)
    cols = np.arange(3, 9)
    np.testing.assert_allclose(b0_kspace(images, field, times[cols], columns=cols), full[..., cols], atol=1e-5)


def test_b0_matches_a_direct_per_sample_sum():
    rng = np.random.default_rng(2)
    h, w = 6, 8
    image, field, times = _crandn(rng, h, w), rng.uniform(-100, 100, (h, w)), readout_times(w, 200.0)
    got = b0_kspace(image, field, times)
    c_h, c_w = h // 2, w // 2
    y, x = np.mgrid[:h, :w] - np.array([c_h, c_w])[:, None, None]
    ref = np.zeros((h, w), complex)
    for ky in range(h):
        for kx in range(w):
            kernel = np.exp(-2j * np.pi * ((ky - c_h) * y / h + (kx - c_w) * x / w))
            ref[ky, kx] = np.sum(image * np.exp(2j * np.pi * field * times[kx]) * kernel) / np.sqrt(h * w)
    np.testing.assert_allclose(got, ref, atol=1e-4)
    assert np.abs(got - fft2c(image)).max() > 1e-2  # the field does change the data


def test_espirit_maps_differ_from_true_maps_but_reconstruct_the_image():
    import sigpy

    rng = np.random.default_rng(3)
    shape, coils = (64, 64), 6
    image = sigpy.shepp_logan(shape) * np.exp(1j * 0.3)
    true = sigpy.mri.birdcage_maps((coils, *shape)).astype(np.complex64)
    ksp = fft2c(true * image[None])
    ksp = ksp + 1e-3 * _crandn(rng, *ksp.shape)
    est = estimate_maps(ksp.astype(np.complex64), calib_width=calibration_width(shape), max_iter=30)
    inside = np.abs(image) > 0.1
    assert np.linalg.norm((est - true)[:, inside]) / np.linalg.norm(true[:, inside]) > 0.05  # not the truth
    np.testing.assert_allclose(rss(est)[inside], 1.0, atol=1e-3)
    recon = np.sum(np.conj(est) * ifft2c(ksp), axis=0)
    err = np.linalg.norm((np.abs(recon) - np.abs(image))[inside]) / np.linalg.norm(image[inside])
    assert err < 0.02


def test_parse_mismatch_and_its_errors():
    assert parse_mismatch("b0=100, delay=0.3,maps=true,bw=300") == {
        "b0_hz": 100.0, "gradient_delay": 0.3, "maps": "true", "readout_bw_hz": 300.0}
    assert parse_mismatch("") == {} and parse_mismatch(None) == {}
    for bad, match in [("b0=-1", "b0"), ("speed=3", "keys"), ("maps=jsense", "maps"), ("delay=x", "number"),
                       ("bw=0", "bw")]:
        with pytest.raises(ConfigError, match=match):
            parse_mismatch(bad)
