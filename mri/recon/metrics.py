"""Reconstruction metrics per volume, as fastMRI's evaluate.py and meddlr compute them.

All take numpy arrays of one volume (slices, H, W) (or one slice (H, W)); magnitude metrics are
computed on |·| of complex inputs:
    psnr   = 10 log10(data_range² / MSE) over the whole volume, data_range = max |target| of the volume
             (= skimage.metrics.peak_signal_noise_ratio with that data_range)
    ssim   = mean over slices of skimage.metrics.structural_similarity (7×7 window, same data_range)
    nrmse  = ‖target − pred‖ / ‖target‖ over the volume (meddlr's RMSE / RMS(target))
    complex_psnr = 20 log10(max |target| / RMSE of the complex difference) (meddlr's complex pSNR)
"""
from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity


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


def complex_psnr(target, pred) -> float:
    """20 log10(max |target| / RMSE(target − pred)) on complex values."""
    target, pred = np.asarray(target, dtype=np.complex128), np.asarray(pred, dtype=np.complex128)
    rmse = float(np.sqrt(np.mean(np.abs(target - pred) ** 2)))
    return math.inf if rmse == 0 else 20 * math.log10(float(np.abs(target).max()) / rmse)


def volume_metrics(target, pred) -> dict:
    """All metrics of one volume (slices, H, W), with data_range = max |target| of the volume."""
    data_range = float(np.abs(target).max())
    return {"psnr": psnr(target, pred, data_range), "ssim": ssim(target, pred, data_range),
            "nrmse": nrmse(target, pred), "complex_psnr": complex_psnr(target, pred)}


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error (sample std / √n; 0 for one value)."""
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else 0.0
    return float(v.mean()), se
