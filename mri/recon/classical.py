"""Classical reconstructions without training, run slice by slice with sigpy's apps on the CPU:
CG-SENSE (`sigpy.mri.app.SenseRecon`, ℓ2-regularised least squares by conjugate gradient) and
L1-wavelet (`sigpy.mri.app.L1WaveletRecon`, ℓ1 on a Daubechies-4 wavelet transform, FISTA-type).

λ defaults are for k-space normalised by the target volume's standard deviation (the readers'
default): the images then have values of order 1 and the per-coil noise is ~1e-2 of the signal in
our simulation, so λ = 1e-2 (CG-SENSE, a light Tikhonov term that mainly stops noise amplification at
high acceleration) and λ = 1e-3 (L1-wavelet) are in the usual range; `tune_lambda` picks λ on
training slices when asked (compare --tune-classical).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

METHODS = {"cg-sense": 1e-2, "l1-wavelet": 1e-3}


class ClassicalRecon(nn.Module):
    """Args: method "cg-sense" or "l1-wavelet"; lamda (None: the default above); max_iter.

    forward(kspace, maps, mask) as the learned models (torch tensors, any device) → (B, H, W) complex
    on the input's device; the work runs in numpy on the CPU.
    """

    def __init__(self, method: str, lamda: float | None = None, max_iter: int = 30):
        super().__init__()
        if method not in METHODS:
            raise ValueError(f"classical method must be one of {sorted(METHODS)}, got {method!r}")
        self.method, self.max_iter = method, int(max_iter)
        self.lamda = METHODS[method] if lamda is None else float(lamda)
        self.transform_kind = "fft"

    def extra_repr(self):
        return f"method={self.method!r}, lamda={self.lamda}, max_iter={self.max_iter}"

    def reconstruct_slice(self, kspace: np.ndarray, maps: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
        """kspace, maps (coils, H, W), mask (H, W) → image (H, W) complex64."""
        import sigpy.mri.app as app

        common = dict(weights=mask, show_pbar=False, max_iter=self.max_iter)
        if self.method == "cg-sense":
            recon = app.SenseRecon(kspace, maps, lamda=self.lamda, **common)
        else:
            recon = app.L1WaveletRecon(kspace, maps, lamda=self.lamda, **common)
        return np.asarray(recon.run(), dtype=np.complex64)

    @torch.no_grad()
    def forward(self, kspace, maps, mask=None):
        ks, mp = kspace.detach().cpu().numpy(), maps.detach().cpu().numpy()
        mk = None if mask is None else mask.detach().cpu().numpy()
        out = [self.reconstruct_slice(ks[b], mp[b], None if mk is None else mk[b]) for b in range(ks.shape[0])]
        return torch.from_numpy(np.stack(out)).to(kspace.device)


def tune_lambda(method: str, slices: list[dict], grid=None, max_iter: int = 30) -> float:
    """λ from `grid` (default: 4 decades around the default) with the best mean magnitude PSNR on the
    given slices (dicts with numpy kspace (undersampled), maps, mask, target)."""
    from mri.recon.metrics import psnr

    grid = grid or [METHODS[method] * f for f in (0.1, 0.3, 1, 3, 10)]
    scores = []
    for lam in grid:
        model = ClassicalRecon(method, lam, max_iter)
        scores.append(np.mean([psnr(abs(s["target"]), abs(model.reconstruct_slice(s["kspace"], s["maps"], s["mask"])),
                                    float(abs(s["target"]).max())) for s in slices]))
    return float(grid[int(np.argmax(scores))])
