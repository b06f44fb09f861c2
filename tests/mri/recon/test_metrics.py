import math

import numpy as np
import pytest
import torch
from skimage.metrics import normalized_root_mse, peak_signal_noise_ratio, structural_similarity

from mri.recon.losses import complex_l1, reconstruction_loss, ssim_torch
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
    assert mean_se([5.0]) == (5.0, 0.0)


def test_torch_ssim_equals_skimage(volume):
    target, pred = volume
    t, p = np.abs(target), np.abs(pred)
    dr = torch.tensor([float(x.max()) for x in t])
    got = ssim_torch(torch.from_numpy(p).double(), torch.from_numpy(t).double(), dr.double())
    ref = [structural_similarity(a, b, data_range=float(d)) for a, b, d in zip(t.astype(np.float64), p.astype(np.float64), dr)]
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-6)


def test_losses(volume):
    target, pred = (torch.from_numpy(v) for v in volume)
    assert float(complex_l1(pred, target)) == pytest.approx(float(np.mean(np.abs(volume[0] - volume[1]))), rel=1e-5)
    assert float(reconstruction_loss("ssim", target, target)) == pytest.approx(0.0, abs=1e-5)
    with pytest.raises(ValueError, match="loss must be"):
        reconstruction_loss("l2", pred, target)
