"""Reconstruction metrics per volume, in the two conventions MRI papers report (name the one you use).

All take numpy arrays of one volume (slices, H, W) (or one slice (H, W)) of ONE echo; magnitude
metrics are computed on |·| of complex inputs. Argument order everywhere: (target, pred).

``convention="fastmri"`` (fastmri/evaluate.py):
    psnr = 10 log10(data_range² / MSE) over the whole volume, data_range = max |target| of the volume
           (= skimage.metrics.peak_signal_noise_ratio with that data_range)
    ssim = mean over slices of skimage.metrics.structural_similarity with its defaults (7×7 uniform
           window, sample covariance) and the same volume data_range
``convention="skmtea"`` (meddlr, used by SKM-TEA: per echo, on the 3-D volume):
    psnr = 20 log10(max |target| / RMSE) on magnitudes over the volume (numerically the same formula as
           fastMRI's; kept separate so a change in either convention stays local)
    ssim = skimage SSIM of the whole (slices, H, W) volume with a 3-D Gaussian window σ = 1.5, 11 wide
           (truncate 3.5), population covariance (Wang et al.), data_range = max |target|. Volumes with
           fewer than 11 slices cannot hold an 11-wide window along the slice axis: there SSIM is the
           mean over slices of the 2-D 11×11 Gaussian SSIM (documented fallback, same weights in-plane).
On the same images the two SSIMs differ (uniform 7×7 vs Gaussian 11-wide window, per-slice vs 3-D),
typically by ~0.01–0.02; PSNR agrees for one volume but not when data ranges are per slice.

Also: nrmse = ‖target − pred‖ / ‖target‖ on magnitudes (meddlr's RMSE / RMS(target));
complex_psnr = 20 log10(max |target| / RMSE of the complex difference) (meddlr's complex pSNR).

Complex PSNR on the mismatch track. The stored target is the SENSE combination of the mismatch-FREE
k-space, while the acquired k-space carries the gradient delay δ — an image-domain linear phase
exp(−2πi·δ·(x − W//2)/W) along the readout (mri.data.mismatch.delay_phase) that no magnitude sees
but that caps the complex PSNR of any model near 20 dB. We define the complex target consistently with
the acquisition: ``scanner_phase_target(target, δ)`` = target × that phase (the image the scanner's
own k-space describes; B0 leaves no net phase because readout times are symmetric about the echo, its
shift and blur remain genuine errors). ``complex_psnr(target, pred, gradient_delay=δ)`` and
``volume_metrics(..., gradient_delay=δ)`` use it; δ = 0 (exact track, real data) is the plain metric. A model
whose forward operator already contains the delay (the oracle-physics models, mri.recon.mismatch_sense)
reconstructs the object's phase, so `evaluation.evaluate` scores it against the plain target (δ = 0).
Magnitude PSNR / SSIM stay the primary metrics.
``mean_se`` is common.stats.mean_se (one value → NaN standard error).
"""
from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

from common.errors import ConfigError
from common.stats import mean_se  # noqa: F401  (re-exported: one rule for mean ± s.e. project-wide)

CONVENTIONS = ("fastmri", "skmtea")
GAUSSIAN_SSIM = {"gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}  # 11-wide window
GAUSSIAN_WIDTH = 11


def _magnitudes(target, pred):
    target, pred = np.abs(np.asarray(target)).astype(np.float64), np.abs(np.asarray(pred)).astype(np.float64)
    if target.shape != pred.shape:
        raise ValueError(f"target {target.shape} and prediction {pred.shape} must have the same shape")
    return target, pred


def psnr(target, pred, data_range: float | None = None) -> float:
    """Magnitude PSNR in dB; data_range defaults to max |target|."""
    t, p = _magnitudes(target, pred)
    data_range = float(t.max()) if data_range is None else float(data_range)
    mse = float(np.mean((t - p) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(data_range ** 2 / mse)


def nrmse(target, pred) -> float:
    """‖|target| − |pred|‖ / ‖|target|‖ on magnitudes."""
    t, p = _magnitudes(target, pred)
    return float(np.linalg.norm(t - p) / np.linalg.norm(t))


def ssim(target, pred, data_range: float | None = None) -> float:
    """Mean over slices of skimage's SSIM on magnitudes (one slice: its SSIM)."""
    t, p = _magnitudes(target, pred)
    data_range = float(t.max()) if data_range is None else float(data_range)
    t, p = t.reshape(-1, *t.shape[-2:]), p.reshape(-1, *p.shape[-2:])
    return float(np.mean([structural_similarity(a, b, data_range=data_range) for a, b in zip(t, p)]))


def scanner_phase_target(target, gradient_delay: float = 0.0) -> np.ndarray:
    """(..., H, W) target × exp(−2πi·δ·(x − W//2)/W) along the readout (last) axis: the complex target
    in the phase of the acquisition with a gradient delay of δ samples (module docstring)."""
    target = np.asarray(target, dtype=np.complex128)
    if not gradient_delay:
        return target
    w = target.shape[-1]
    return target * np.exp(-2j * np.pi * float(gradient_delay) * (np.arange(w) - w // 2) / w)


def complex_psnr(target, pred, gradient_delay: float = 0.0) -> float:
    """20 log10(max |target| / RMSE(target' − pred)) on complex values, target' = scanner_phase_target
    (target, gradient_delay) (= target without a delay)."""
    target, pred = scanner_phase_target(target, gradient_delay), np.asarray(pred, dtype=np.complex128)
    rmse = float(np.sqrt(np.mean(np.abs(target - pred) ** 2)))
    return math.inf if rmse == 0 else 20 * math.log10(float(np.abs(target).max()) / rmse)


def ssim_gaussian(target, pred, data_range: float | None = None) -> float:
    """SKM-TEA/meddlr SSIM on magnitudes: one 3-D Gaussian-window SSIM (σ 1.5, 11 wide) of the volume,
    or, with fewer than 11 slices (or one slice), the mean of the per-slice 2-D Gaussian SSIMs."""
    t, p = _magnitudes(target, pred)
    data_range = float(t.max()) if data_range is None else float(data_range)
    if t.ndim == 3 and t.shape[0] >= GAUSSIAN_WIDTH:
        return float(structural_similarity(t, p, data_range=data_range, **GAUSSIAN_SSIM))
    t, p = t.reshape(-1, *t.shape[-2:]), p.reshape(-1, *p.shape[-2:])
    return float(np.mean([structural_similarity(a, b, data_range=data_range, **GAUSSIAN_SSIM)
                          for a, b in zip(t, p)]))


def volume_metrics(target, pred, convention: str = "fastmri", gradient_delay: float = 0.0) -> dict:
    """All metrics of one volume (slices, H, W) of one echo, data_range = max |target| of the volume:
    {"psnr", "ssim", "nrmse", "complex_psnr", "convention"}; psnr/ssim follow ``convention``
    ("fastmri" or "skmtea", see the module docstring); complex_psnr is against the scanner-phase
    target of ``gradient_delay`` (the scan's attrs; 0 on the exact track)."""
    if convention not in CONVENTIONS:
        raise ConfigError(f"metric convention must be one of {CONVENTIONS}, got {convention!r}")
    data_range = float(np.abs(target).max())
    ssim_fn = ssim if convention == "fastmri" else ssim_gaussian
    return {"psnr": psnr(target, pred, data_range), "ssim": ssim_fn(target, pred, data_range),
            "nrmse": nrmse(target, pred), "complex_psnr": complex_psnr(target, pred, gradient_delay),
            "convention": convention}


def slice_metrics(target, pred) -> dict:
    """Per-slice metrics of one volume (slices, H, W) in the fastMRI convention's data range (max |target|
    of the VOLUME, so a dark edge slice is not scored on its own scale): {"psnr": [...], "ssim": [...],
    "nmse": [...]}, one value per slice; nmse = ‖|target| − |pred|‖² / ‖|target|‖² of the slice (fastMRI's
    NMSE, per slice). The per-sample values of an MRI study (`mri.recon.study`)."""
    target, pred = np.asarray(target), np.asarray(pred)
    if target.ndim != 3 or target.shape != pred.shape:
        raise ValueError(f"expected two volumes (slices, H, W) of one shape, got {target.shape} and {pred.shape}")
    data_range = float(np.abs(target).max())
    return {"psnr": [psnr(t, p, data_range) for t, p in zip(target, pred)],
            "ssim": [ssim(t, p, data_range) for t, p in zip(target, pred)],
            "nmse": [nrmse(t, p) ** 2 for t, p in zip(target, pred)]}
