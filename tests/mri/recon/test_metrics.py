import math

import numpy as np
import pytest
import torch
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from mri.recon.losses import complex_l1, reconstruction_loss, ssim_torch
from common.errors import ConfigError
from mri.recon.metrics import complex_psnr, mean_se, nrmse, psnr, ssim, volume_metrics


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    target = (rng.standard_normal((3, 20, 24)) + 1j * rng.standard_normal((3, 20, 24))).astype(np.complex64)
    pred = target + 0.3 * (rng.standard_normal(target.shape) + 1j * rng.standard_normal(target.shape))
    return target, pred.astype(np.complex64)


def test_metrics_equal_skimage(volume):
    target, pred = volume
    t, p = np.abs(target).astype(np.float64), np.abs(pred).astype(np.float64)
    dr = t.max()
    m = volume_metrics(target, pred)
    assert m["psnr"] == pytest.approx(peak_signal_noise_ratio(t, p, data_range=dr), rel=1e-9)
    assert m["nrmse"] == pytest.approx(normalized_root_mse(t, p, normalization="euclidean"), rel=1e-9)
    ref_ssim = np.mean([structural_similarity(a, b, data_range=dr) for a, b in zip(t, p)])
    assert m["ssim"] == pytest.approx(ref_ssim, rel=1e-9)


def test_hand_computed_case():
    target = np.zeros((2, 8, 8), dtype=np.complex64)
    target[0, 0, 0] = 2.0  # volume max 2
    pred = target + 0.1  # magnitude error 0.1 on all pixels but the max (|2.1 − 2| = 0.1 too)
    assert psnr(target, pred) == pytest.approx(10 * math.log10(4 / 0.01))
    assert nrmse(target, pred) == pytest.approx(math.sqrt(128 * 0.01) / 2)
    assert complex_psnr(target, pred) == pytest.approx(20 * math.log10(2 / 0.1), rel=1e-6)
    assert ssim(target, target) == pytest.approx(1.0)
    assert mean_se([1.0, 2.0, 3.0]) == pytest.approx((2.0, 1 / math.sqrt(3)))
    assert mean_se([5.0])[0] == 5.0 and math.isnan(mean_se([5.0])[1])  # common.stats: one value → NaN s.e.


def test_torch_ssim_equals_skimage(volume):
    target, pred = volume
    t, p = np.abs(target), np.abs(pred)
    dr = torch.tensor([float(x.max()) for x in t])
    got = ssim_torch(torch.from_numpy(p).double(), torch.from_numpy(t).double(), dr.double())
    ref = [structural_similarity(a, b, data_range=float(d)) for a, b, d in zip(t.astype(np.float64), p.astype(np.float64), dr)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)


def test_losses(volume):
    target, pred = (torch.from_numpy(v) for v in volume)
    assert float(complex_l1(pred, target).mean()) == pytest.approx(  # per image or batch: same mean
        float(np.mean(np.abs(volume[0] - volume[1]))), rel=1e-5)
    assert float(reconstruction_loss("ssim", target, target)) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="loss must be"):
        reconstruction_loss("l2", pred, target)


def _brain_like_volume(slices, seed=0):
    """Smooth structured magnitude images (skimage's Shepp–Logan) plus noise as prediction."""
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    rng = np.random.default_rng(seed)
    base = resize(shepp_logan_phantom(), (48, 40), anti_aliasing=True)
    target = np.stack([base * (1 + 0.05 * s) for s in range(slices)]).astype(np.complex64)
    pred = target + 0.04 * (rng.standard_normal(target.shape) + 1j * rng.standard_normal(target.shape))
    return target, pred.astype(np.complex64)


@pytest.mark.parametrize("slices", [4, 12])
def test_both_conventions_equal_skimage_with_their_options_and_differ(slices):
    target, pred = _brain_like_volume(slices)
    t, p = np.abs(target).astype(np.float64), np.abs(pred).astype(np.float64)
    dr = t.max()
    fm = volume_metrics(target, pred, convention="fastmri")
    sk = volume_metrics(target, pred, convention="skmtea")
    assert fm["psnr"] == pytest.approx(peak_signal_noise_ratio(t, p, data_range=dr), rel=1e-9)
    assert sk["psnr"] == pytest.approx(20 * math.log10(dr / np.sqrt(np.mean((t - p) ** 2))), rel=1e-9)
    assert fm["ssim"] == pytest.approx(np.mean([structural_similarity(a, b, data_range=dr, win_size=7)
                                                for a, b in zip(t, p)]), rel=1e-9)
    gauss = dict(data_range=dr, gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
    if slices >= 11:  # one 3-D SSIM with an 11-wide Gaussian window
        ref = structural_similarity(t, p, **gauss)
    else:  # too few slices for an 11-wide window along the slices: per-slice 11×11 Gaussian SSIM
        ref = np.mean([structural_similarity(a, b, **gauss) for a, b in zip(t, p)])
    assert sk["ssim"] == pytest.approx(ref, rel=1e-9)
    assert abs(fm["ssim"] - sk["ssim"]) > 1e-3  # different windows → a report must name its convention
    assert fm["convention"] == "fastmri" and sk["convention"] == "skmtea"


def test_gaussian_ssim_window_is_11_wide_with_sigma_1_5():
    """Independent check of the SKM-TEA SSIM on one slice: Wang et al.'s formula with scipy's Gaussian
    filter (σ 1.5, truncate 3.5 → 11 taps), averaged over the pixels whose window lies inside."""
    from scipy.ndimage import gaussian_filter

    target, pred = _brain_like_volume(1, seed=3)
    t, p = np.abs(target[0]).astype(np.float64), np.abs(pred[0]).astype(np.float64)
    g = lambda x: gaussian_filter(x, 1.5, truncate=3.5)
    mt, mp = g(t), g(p)
    vt, vp, cov = g(t * t) - mt ** 2, g(p * p) - mp ** 2, g(t * p) - mt * mp
    c1, c2 = (0.01 * t.max()) ** 2, (0.03 * t.max()) ** 2
    smap = (2 * mt * mp + c1) * (2 * cov + c2) / ((mt ** 2 + mp ** 2 + c1) * (vt + vp + c2))
    ref = smap[5:-5, 5:-5].mean()
    assert volume_metrics(target[:1], pred[:1], convention="skmtea")["ssim"] == pytest.approx(ref, rel=1e-6)


def test_unknown_convention_is_a_config_error(volume):
    with pytest.raises(ConfigError, match="fastmri"):
        volume_metrics(*volume, convention="meddlr")


def test_scanner_phase_target_is_the_delayed_acquisitions_image():
    """An integer delay δ samples k-space at k_j + δ: the FFT of the scanner-phase target is the
    target's k-space rolled by −δ along the readout; the complex PSNR of the delayed image against it
    is infinite while against the plain target it is capped; magnitude metrics do not change."""
    from mri.data.transforms import fft2c
    from mri.recon.metrics import complex_psnr, scanner_phase_target, volume_metrics

    rng = np.random.default_rng(4)
    target = rng.standard_normal((2, 16, 12)) + 1j * rng.standard_normal((2, 16, 12))
    shifted = scanner_phase_target(target, 1.0)
    assert np.allclose(fft2c(shifted), np.roll(fft2c(target), -1, axis=-1))
    assert np.allclose(np.abs(shifted), np.abs(target))
    pred = scanner_phase_target(target, 0.3)
    assert complex_psnr(target, pred, gradient_delay=0.3) == np.inf
    assert complex_psnr(target, pred) < 30
    plain, fair = volume_metrics(target, pred), volume_metrics(target, pred, gradient_delay=0.3)
    assert plain["psnr"] == fair["psnr"] > 200 and fair["complex_psnr"] == np.inf


def test_scanner_phase_target_fits_simulated_delay_data(tmp_path):
    """On simulated data with a 0.3-sample delay (no B0), the fully sampled zero-filled SENSE image is
    close to the scanner-phase target in complex PSNR and far from the plain (mismatch-free) target."""
    from mri.data.presets import PRESETS
    from mri.data.simulate import simulate_dataset
    from mri.data.skmtea import SkmTeaSlices
    from mri.data.transforms import sense_adjoint
    from mri.recon.metrics import complex_psnr

    simulate_dataset(PRESETS["tiny"].replace(n_scans=1, slices=1, gradient_delay=0.3, espirit_max_iter=10),
                     tmp_path, progress=False)
    item = SkmTeaSlices(tmp_path)[0]
    zf = sense_adjoint(item["kspace"], item["maps"])
    fair, plain = complex_psnr(item["target"], zf, 0.3), complex_psnr(item["target"], zf)
    assert fair > 40 and plain < fair - 10, (fair, plain)
