"""The multi-coil SENSE operator A x = M · F · (S x) with a swappable 2-D Fourier transform F."""
from __future__ import annotations

import torch
from torch import nn

from common.errors import ConfigError
from mri.recon.fourier import Fourier2d


def _as_batched(name: str, x: torch.Tensor, dims: int, expected: str) -> torch.Tensor:
    if not torch.is_tensor(x):
        x = torch.as_tensor(x)
    if x.dim() == dims - 1:
        return x.unsqueeze(0)
    if x.dim() != dims:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected {expected}")
    return x


class SenseOp(nn.Module):
    """SENSE forward model for a batch: image (B, H, W) → k-space (B, coils, H, W).

    A x = M · F(S_c · x) per coil, Aᴴ y = Σ_c conj(S_c) · Fᴴ(M · y_c), with F the centred
    orthonormal 2-D DFT (or a learned dense / Monarch matrix per axis, see `Fourier2d`). With
    transform="fft" this is `sigpy.mri.linop.Sense(maps, weights=mask)`; for every kind `adjoint` is
    the exact adjoint of `forward`, because it applies the conjugate transpose of the current matrices.

    Args:
        maps: (B, coils, H, W) or (coils, H, W) (shared by the batch) complex coil sensitivities.
        mask: (B, H, W) or (H, W) sampling mask (1 = sampled), or None for full sampling.
        transform: "fft" (the fixed centred FFT) or a module with forward/adjoint over the last two
            axes (e.g. a model's learned `Fourier2d`). A learned kind is never given by name: a fresh,
            untrained transform made here would silently not be the model's (ConfigError).

    A model builds its operator once (`SenseOp(transform=module)` without maps) and binds each batch's
    maps and mask with `with_data(maps, mask)`, which shares the transform module.
    """

    def __init__(self, maps: torch.Tensor | None = None, mask: torch.Tensor | None = None, transform="fft"):
        super().__init__()
        if isinstance(transform, str) and transform != "fft":
            raise ConfigError(f"SenseOp(transform={transform!r}): a learned transform must be passed as a module "
                              "(e.g. the model's Fourier2d), not by name", hint="use transform=Fourier2d(shape, kind)")
        self.transform = transform
        self.maps = self.mask = None
        if maps is not None:
            self._bind(maps, mask)

    def with_data(self, maps: torch.Tensor, mask: torch.Tensor | None = None) -> "SenseOp":
        """A SenseOp for these maps and mask sharing this operator's transform module (cheap)."""
        return SenseOp(maps, mask, self.transform)

    def _bind(self, maps, mask):
        maps = _as_batched("maps", maps, 4, "(B, coils, H, W) or (coils, H, W)")
        if not maps.is_complex():
            raise TypeError(f"maps must be complex, got {maps.dtype}")
        self.maps = maps
        shape = tuple(maps.shape[-2:])
        if mask is not None:
            mask = _as_batched("mask", mask, 3, f"(B, H, W) or (H, W) with (H, W) = {shape}")
            if tuple(mask.shape[-2:]) != shape:
                raise ValueError(f"mask has shape {tuple(mask.shape)} but maps are {tuple(maps.shape)}; "
                                 f"expected the mask's last two dims to be {shape}")
            mask = mask.to(device=maps.device, dtype=maps.real.dtype).unsqueeze(1)  # (B, 1, H, W)
        self.mask = mask
        if isinstance(self.transform, str):  # "fft": the fixed transform has no parameters to share
            self.transform = Fourier2d(shape, "fft", dtype=maps.dtype).to(maps.device)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.maps.shape[-2:])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, H, W) or (H, W) complex → k-space (B, coils, H, W)."""
        image = _as_batched("image", image, 3, f"(B, H, W) or (H, W) with (H, W) = {self.shape}")
        if tuple(image.shape[-2:]) != self.shape:
            raise ValueError(f"image has shape {tuple(image.shape)}; expected (B, {self.shape[0]}, {self.shape[1]})")
        kspace = self.transform(self.maps * image.unsqueeze(1))
        return kspace if self.mask is None else kspace * self.mask

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        """k-space (B, coils, H, W) or (coils, H, W) → image (B, H, W)."""
        kspace = _as_batched("kspace", kspace, 4, f"(B, coils, H, W) or (coils, H, W) matching maps {tuple(self.maps.shape)}")
        if kspace.shape[-3:] != self.maps.shape[-3:]:
            raise ValueError(f"kspace has shape {tuple(kspace.shape)}; expected (B, {', '.join(map(str, self.maps.shape[-3:]))}) "
                             f"to match the maps")
        if self.mask is not None:
            kspace = kspace * self.mask
        return torch.sum(self.maps.conj() * self.transform.adjoint(kspace), dim=1)

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        """AᴴA x (B, H, W)."""
        return self.adjoint(self.forward(image))
