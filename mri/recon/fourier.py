"""The centred orthonormal 2-D (I)DFT over the last two axes as a pair of `monarch_core.LearnableDFT`
modules, one per axis, so the FFT can be swapped for any kind of `monarch_core.TRANSFORM_KINDS`
(the fixed FFT, or a learnable dense, Monarch or diagonal-gain transform)."""
from __future__ import annotations

import torch
from torch import nn

from monarch_core import TRANSFORM_KINDS, LearnableDFT

__all__ = ["TRANSFORM_KINDS", "Fourier2d"]  # TRANSFORM_KINDS re-exported from monarch_core


class Fourier2d(nn.Module):
    """T = T_H ⊗ T_W applied to (..., H, W) complex tensors (centred, norm="ortho").

    Args:
        shape: (H, W) of the images / k-space.
        kind: a name in TRANSFORM_KINDS: "fft" (fixed torch.fft), "dense", "monarch" or "diag"
            (learnable, start exactly at the (I)DFT).
        inverse: start at the inverse DFT (mSENSE's learned IFFT) instead of the forward one.
        dtype: complex64 or complex128 parameters and outputs.

    forward(x): (..., H, W) → (..., H, W), T_H along dim -2 then T_W along dim -1.
    adjoint(x): Tᴴ, the exact conjugate transpose of the current (possibly learned) matrices.
    """

    def __init__(self, shape, kind: str = "fft", inverse: bool = False, dtype: torch.dtype = torch.complex64):
        super().__init__()
        if kind not in TRANSFORM_KINDS:
            raise ValueError(f"transform kind must be one of {TRANSFORM_KINDS}, got {kind!r}")
        if len(shape) != 2:
            raise ValueError(f"shape must be (H, W), got {shape!r}")
        self.shape, self.kind, self.inverse = tuple(int(s) for s in shape), kind, inverse
        common = dict(kind=kind, inverse=inverse, norm="ortho", centered=True, dtype=dtype)
        self.rows = LearnableDFT(self.shape[0], **common)
        self.cols = LearnableDFT(self.shape[1], **common)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, kind={self.kind!r}, inverse={self.inverse}"

    def _check(self, x: torch.Tensor):
        if x.dim() < 2 or tuple(x.shape[-2:]) != self.shape:
            raise ValueError(f"Fourier2d{self.shape} got a tensor of shape {tuple(x.shape)}; "
                             f"expected (..., {self.shape[0]}, {self.shape[1]})")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.cols(self.rows(x, dim=-2), dim=-1)

    def adjoint(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.rows.adjoint(self.cols.adjoint(x, dim=-1), dim=-2)
