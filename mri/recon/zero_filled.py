"""Zero-filled SENSE (zf) and its learned-inverse versions mSENSE (Monarch) and dSENSE (dense).

zf:     x = Σ_c conj(S_c) · F⁻¹(M y_c)   with F⁻¹ the centred orthonormal IFFT (= Aᴴ y).
mSENSE: the same with F⁻¹ replaced by a learnable matrix per axis (G_H ⊗ G_W), each a factorised
        Monarch matrix initialised to the exact IFFT (the Monarch paper's mSENSE, here on 2-D slices:
        one Monarch matrix along each of the two axes). dSENSE: the same with dense matrices.
The measured k-space y is the data; only the inverse transform is learned, so at initialisation
mSENSE and dSENSE equal zf exactly.
"""
import torch
from torch import nn

from mri.recon.fourier import Fourier2d


class ZeroFilledSense(nn.Module):
    """Args: shape (H, W); transform "fft" (zf), "monarch" (mSENSE) or "dense" (dSENSE).

    forward(kspace, maps, mask): kspace (B, coils, H, W) undersampled, maps (B, coils, H, W),
    mask (B, H, W) or None → image (B, H, W) complex.
    """

    def __init__(self, shape, transform: str = "fft"):
        super().__init__()
        self.transform_kind = transform
        self.inverse = Fourier2d(shape, transform, inverse=True)

    def forward(self, kspace: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            kspace = kspace * mask.unsqueeze(1)
        return torch.sum(maps.conj() * self.inverse(kspace), dim=1)
