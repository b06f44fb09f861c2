"""Unrolled proximal-gradient network in the style of meddlr's GeneralizedUnrolledCNN, and its
MoDL variant (conjugate-gradient data consistency), over a SENSE operator with a swappable transform.

Gradient variant, K steps (weights not shared across steps):
    x₀ = Aᴴy;  x ← x − α_k (AᴴA x − Aᴴy);  x ← x + CNN_k(x)
MoDL variant: z = x + CNN_k(x);  x = (AᴴA + λ_k I)⁻¹ (Aᴴy + λ_k z) by a fixed number of CG iterations.
A = SenseOp(maps, mask, F) where F (`Fourier2d`) is the fixed FFT or a learnable dense / Monarch
matrix per axis initialised to the DFT; its adjoint is the exact conjugate transpose, so AᴴA stays
Hermitian positive semi-definite while F is learned (but no longer of norm 1: see `step_size`).
"""
from __future__ import annotations

import torch
from torch import nn

from monarch_core import reused_matrices

from mri.recon.complex_channels import to_channels, to_complex
from mri.recon.fourier import Fourier2d
from mri.recon.sense import SenseOp


class ResBlock(nn.Module):
    """conv3×3 → ReLU → conv3×3 → ReLU plus the input (no normalisation, as meddlr's knee config)."""

    def __init__(self, channels: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True),
                                  nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x):
        return x + self.body(x)


class ResidualCNN(nn.Module):
    """Complex image (B, H, W) → x + CNN(real/imag channels) (B, H, W)."""

    def __init__(self, channels: int = 128, resblocks: int = 2):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(2, channels, 3, padding=1), nn.ReLU(inplace=True),
                                 *[ResBlock(channels) for _ in range(resblocks)],
                                 nn.Conv2d(channels, 2, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + to_complex(self.net(to_channels(x)))


def conjugate_gradient(normal, rhs: torch.Tensor, iters: int) -> torch.Tensor:
    """Solve normal(x) = rhs (Hermitian positive definite, batched over dim 0) by `iters` CG steps
    from x = 0; differentiable (the iterations are unrolled)."""
    x = torch.zeros_like(rhs)
    r, p = rhs, rhs
    rr = _dot(r, r)
    for _ in range(iters):
        ap = normal(p)
        alpha = rr / _dot(p, ap).clamp_min(1e-30)
        x = x + alpha * p
        r = r - alpha * ap
        rr_new = _dot(r, r)
        p = r + (rr_new / rr.clamp_min(1e-30)) * p
        rr = rr_new
    return x


def _dot(a, b):
    return torch.sum(a.conj() * b, dim=(-2, -1), keepdim=True).real


class UnrolledNet(nn.Module):
    """Args:
        shape: (H, W).
        transform: a kind of monarch_core.TRANSFORM_KINDS — the transform inside the SENSE operator.
        steps, resblocks, channels: K unrolled steps, res-blocks and features per CNN
            (meddlr knee config: 8, 2, 128).
        step_size: initial α of every gradient step (meddlr: 2; ‖AᴴA‖ ≤ 1 for the FFT).
        data_consistency: "gradient" (proximal gradient) or "cg" (MoDL).
        cg_iters, cg_lambda: CG iterations and initial λ of the MoDL variant.
        oracle_physics: A is `mri.recon.mismatch_sense.MismatchSenseOp` with the known gradient delay
            and B0 field of each slice (the oracle-physics control of the mismatch track; transform
            must be "fft"); forward then needs ``physics``.

    forward(kspace, maps, mask, physics=None) → image (B, H, W) complex; kspace (B, coils, H, W)
    undersampled, maps (B, coils, H, W), mask (B, H, W); physics (oracle_physics only): {"b0_field_hz":
    (B, H, W), "gradient_delay": (B,), "readout_bw_hz": (B,)} as the readers give them.
    """

    def __init__(self, shape, transform: str = "fft", steps: int = 8, resblocks: int = 2, channels: int = 128,
                 step_size: float = 2.0, data_consistency: str = "gradient", cg_iters: int = 6,
                 cg_lambda: float = 1.0, oracle_physics: bool = False):
        super().__init__()
        if oracle_physics and transform != "fft":
            raise ValueError(f"oracle_physics corrects the FFT model; got transform {transform!r}")
        self.needs_physics = bool(oracle_physics)
        if data_consistency not in ("gradient", "cg"):
            raise ValueError(f"data_consistency must be 'gradient' or 'cg', got {data_consistency!r}")
        self.transform_kind, self.data_consistency, self.cg_iters = transform, data_consistency, cg_iters
        # the CNNs are built first so their random initialisation does not depend on the transform kind
        self.cnns = nn.ModuleList(ResidualCNN(channels, resblocks) for _ in range(steps))
        init = step_size if data_consistency == "gradient" else cg_lambda
        self.step_sizes = nn.Parameter(torch.full((steps,), float(init)))
        self.sense = SenseOp(transform=Fourier2d(shape, transform))  # built once; maps and mask per call

    @property
    def fourier(self) -> Fourier2d:
        """The transform inside A (learned unless "fft")."""
        return self.sense.transform

    def forward(self, kspace: torch.Tensor, maps: torch.Tensor, mask: torch.Tensor | None = None,
                physics: dict | None = None) -> torch.Tensor:
        # A and Aᴴ run 2·steps (gradient) or 2·steps·cg_iters (MoDL) times: build the transforms' matrices once
        with reused_matrices():
            return self._unrolled(kspace, maps, mask, physics)

    def _unrolled(self, kspace, maps, mask, physics) -> torch.Tensor:
        if self.needs_physics:
            from mri.recon.mismatch_sense import MismatchSenseOp

            if physics is None:
                raise ValueError("an oracle-physics model needs the scans' physics (b0_field_hz, gradient_delay, "
                                 "readout_bw_hz): train it on simulated mismatch data")
            op = MismatchSenseOp(maps, mask, physics["b0_field_hz"], physics["gradient_delay"],
                                 physics["readout_bw_hz"])
        else:
            op = self.sense.with_data(maps, mask)
        aty = op.adjoint(kspace)
        x = aty
        for k, cnn in enumerate(self.cnns):
            if self.data_consistency == "gradient":
                x = cnn(x - self.step_sizes[k] * (op.normal(x) - aty))
            else:
                lam = self.step_sizes[k].abs()
                x = conjugate_gradient(lambda v: op.normal(v) + lam * v, aty + lam * cnn(x), self.cg_iters)
        return x
