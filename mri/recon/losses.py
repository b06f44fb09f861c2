"""Training losses on complex images (B, H, W): complex L1 (default), magnitude SSIM, or both.

`ssim_torch` reproduces skimage's structural_similarity defaults (7×7 uniform window, sample
covariance, K1 = 0.01, K2 = 0.03, mean over the valid region) so the loss optimises the reported metric.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mri.recon.model_names import LOSSES  # noqa: F401 (the names live beside the model names: no torch there)


def complex_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mean |pred − target| over complex pixels: (B, H, W) → (B,), one value per image."""
    return (pred - target).abs().flatten(1).mean(dim=1)


def ssim_torch(pred: torch.Tensor, target: torch.Tensor, data_range: torch.Tensor, win: int = 7) -> torch.Tensor:
    """SSIM per image of real (B, H, W) tensors with data_range (B,) → (B,)."""
    x, y = pred.unsqueeze(1), target.unsqueeze(1)
    n = win * win
    mean = lambda t: F.avg_pool2d(t, win, stride=1)  # noqa: E731  (valid region, as skimage crops)
    ux, uy = mean(x), mean(y)
    cov = n / (n - 1)
    vx, vy, vxy = cov * (mean(x * x) - ux * ux), cov * (mean(y * y) - uy * uy), cov * (mean(x * y) - ux * uy)
    dr = data_range.view(-1, 1, 1, 1)
    c1, c2 = (0.01 * dr) ** 2, (0.03 * dr) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
    return s.flatten(1).mean(dim=1)


def reconstruction_loss(name: str, pred: torch.Tensor, target: torch.Tensor, per_sample: bool = False) -> torch.Tensor:
    """Loss `name` (see LOSSES) between complex (B, H, W) images: the batch mean, or with
    per_sample=True the (B,) loss of each image (the training engine averages those itself)."""
    if name not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")
    loss = torch.zeros(pred.shape[0], device=pred.device)
    if "l1" in name:
        loss = loss + complex_l1(pred, target)
    if "ssim" in name:
        t = target.abs()
        loss = loss + 1 - ssim_torch(pred.abs(), t, t.flatten(1).amax(dim=1))
    return loss if per_sample else loss.mean()
