"""The oracle-physics SENSE operator of the mismatch track: A x = M · F_lines · E(S x) with the KNOWN
gradient delay and B0 field map in E (the control that asks what a learned transform buys when the
scanner's departures from the ideal FFT model are known exactly).

Physics (the simulation's, mri.data.mismatch and mri.data.simulate.acquire): the readout is the last
axis (width W, k-space centre c = W // 2). Readout sample j is acquired at t_j = (j − c)/(W·bw)
(`mri.data.mismatch.readout_times`); a gradient delay δ samples k_j + δ, i.e. multiplies the image by
exp(−2πi·δ·(x − c)/W) (`delay_phase`); B0 multiplies the image by exp(i·2π·Δf(r)·t_j) while sample j is
read. So for every phase-encoding row r the readout is the exact (W × W) matrix

    E_r[j, x] = exp(i·2π·Δf[r, x]·t_j) · e^{−2πi(j−c)(x−c)/W}/√W · exp(−2πi·δ·(x − c)/W)

(no time segmentation: the exact per-readout-sample phase, as `mri.data.mismatch.b0_kspace`), followed
by the centred orthonormal FFT along the rows. Aᴴ applies the conjugate transposes in reverse order,
so it is the exact adjoint. With Δf = 0 and δ = 0 it is the ideal SENSE operator (`SenseOp`, "fft").

The field map is the one the simulation stores (``mismatch/b0_field_hz``: the fine-grid field sampled
at the reconstruction grid's pixel centres, one map per scan — the simulation uses one field for all
slices of a scan); the operator is exact for images on the reconstruction grid (oversample = 1) and
approximates the fine-grid simulation otherwise (the field is smooth over pixels).

Cost: an (H, W, W) complex matrix per slice and a batched matmul, O(H·W²) per coil.
"""
from __future__ import annotations

import math

import torch
from torch import nn


def readout_matrices(field_hz: torch.Tensor, gradient_delay: torch.Tensor, readout_bw_hz: torch.Tensor,
                     dtype: torch.dtype = torch.complex64) -> torch.Tensor:
    """(B, H, W, W) complex per-row readout matrices E_r[j, x] (module docstring).

    field_hz: (B, H, W) real (Hz); gradient_delay, readout_bw_hz: (B,) real (samples, Hz per pixel).
    Computed in float64 and cast to ``dtype``."""
    b, h, w = field_hz.shape
    dev = field_hz.device
    c = w // 2
    pos = torch.arange(w, device=dev, dtype=torch.float64) - c           # (W,) j − c and x − c
    times = pos[None, :] / (w * readout_bw_hz.to(torch.float64)[:, None])  # (B, W) t_j
    b0 = 2 * math.pi * field_hz.to(torch.float64)[:, :, None, :] * times[:, None, :, None]  # (B, H, J, X)
    dft = -2 * math.pi * pos[:, None] * pos[None, :] / w                  # (J, X)
    delay = -2 * math.pi * gradient_delay.to(torch.float64)[:, None] * pos[None, :] / w  # (B, X)
    angle = b0 + dft[None, None] + delay[:, None, None, :]
    return (torch.polar(torch.full_like(angle, 1 / math.sqrt(w)), angle)).to(dtype)


def _fft_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(x, dim=-2), dim=-2, norm="ortho"), dim=-2)


def _ifft_rows(x: torch.Tensor) -> torch.Tensor:
    return torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(x, dim=-2), dim=-2, norm="ortho"), dim=-2)


class MismatchSenseOp(nn.Module):
    """Image (B, H, W) → k-space (B, coils, H, W) under the known delay and B0 (see the module docstring).

    Args:
        maps: (B, coils, H, W) complex coil sensitivities.
        mask: (B, H, W) sampling mask or None.
        field_hz: (B, H, W) real B0 field map on the reconstruction grid (zeros: no B0).
        gradient_delay: (B,) readout delay in k-space samples.
        readout_bw_hz: (B,) receiver bandwidth per pixel (Hz).

    Same interface as `SenseOp` (forward, adjoint, normal); `adjoint` is the exact adjoint of `forward`.
    """

    def __init__(self, maps, mask, field_hz, gradient_delay, readout_bw_hz):
        super().__init__()
        if maps.dim() != 4 or not maps.is_complex():
            raise ValueError(f"maps must be complex (B, coils, H, W), got {tuple(maps.shape)} {maps.dtype}")
        b, _, h, w = maps.shape
        field_hz = torch.as_tensor(field_hz, device=maps.device)
        if tuple(field_hz.shape) != (b, h, w):
            raise ValueError(f"field_hz has shape {tuple(field_hz.shape)}; expected (B, H, W) = {(b, h, w)}")
        delay = torch.as_tensor(gradient_delay, device=maps.device).reshape(-1).expand(b)
        bw = torch.as_tensor(readout_bw_hz, device=maps.device).reshape(-1).expand(b)
        self.maps = maps
        self.mask = None if mask is None else mask.to(device=maps.device, dtype=maps.real.dtype).reshape(b, 1, h, w)
        self.readout = readout_matrices(field_hz, delay, bw, maps.dtype)  # (B, H, J, X)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.maps.shape[-2:])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, H, W) → k-space (B, coils, H, W)."""
        coil = self.maps * image.unsqueeze(1)                                  # (B, C, H, X)
        rows = torch.einsum("brjx,bcrx->bcrj", self.readout, coil)            # exact readout per row
        kspace = _fft_rows(rows)
        return kspace if self.mask is None else kspace * self.mask

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        """k-space (B, coils, H, W) → image (B, H, W)."""
        if self.mask is not None:
            kspace = kspace * self.mask
        rows = _ifft_rows(kspace)
        coil = torch.einsum("brjx,bcrj->bcrx", self.readout.conj(), rows)
        return torch.sum(self.maps.conj() * coil, dim=1)

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self.forward(image))
