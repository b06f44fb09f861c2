"""Learning problems on the PDE datasets: how samples become tensors and how a model predicts them.

navier_stokes_2d (FNO paper, fourier_2d_time.py): input = the first `t_in` frames of u as channels,
    (B, t_in, S, S); target = the next `t_out` frames, (B, t_out, S, S), predicted one frame at a
    time, each prediction fed back in place of the oldest input frame. No normalisation.
burgers_1d: a (B, 1, S) → u (B, 1, S), one shot. darcy_2d: coeff (B, 1, S, S) → sol (B, 1, S, S), one
    shot, inputs and outputs normalised per grid point with statistics of the training split
    (neuraloperator's UnitGaussianNormalizer with dim=[0], as the original FNO code does).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from common.errors import ConfigError, FormatError
from monarch_core import reused_matrices

#: Defaults per equation: the FNO paper's choices (n_modes in neuraloperator's centred count).
PROBLEM_DEFAULTS = {
    "navier_stokes_2d": {"n_modes": (24, 22), "hidden_channels": 20, "t_in": 10},
    # fourier_1d.py keeps rfft modes 0..15 (modes = 16); neuralop keeps n//2 + 1 of the last axis, so 30.
    "burgers_1d": {"n_modes": (30,), "hidden_channels": 64},
    "darcy_2d": {"n_modes": (24, 22), "hidden_channels": 32},
}


@dataclass
class Split:
    """Tensors of one split: x (N, C_in, *S) inputs, y (N, C_out, *S) targets (raw units)."""
    x: torch.Tensor
    y: torch.Tensor


def split_off(split: Split, n_last: int) -> tuple[Split, Split | None]:
    """(the first N − n_last samples, the last n_last samples) of a split; (split, None) when n_last = 0.
    Validation is held out of the training part this way, never taken from the test split."""
    if n_last == 0:
        return split, None
    n = split.x.shape[0] - n_last
    return Split(split.x[:n], split.y[:n]), Split(split.x[n:], split.y[n:])


def equation_of(data) -> str:
    equation = getattr(data, "meta", {}).get("equation")
    if equation not in PROBLEM_DEFAULTS:
        keys = sorted(data)
        raise FormatError(f"{getattr(data, 'meta', {}).get('path', 'dataset')}: equation {equation!r} (keys {keys}) "
                         f"is not one this trainer handles; expected one of {sorted(PROBLEM_DEFAULTS)}")
    return equation


def to_tensors(data, equation: str, t_in: int = 10, t_out: int | None = None) -> Split:
    """Arrays of `pde.load_dataset` → a `Split` for this equation (see the module docstring)."""
    if equation == "navier_stokes_2d":
        u = torch.from_numpy(np.ascontiguousarray(data["u"], dtype=np.float32)).permute(0, 3, 1, 2)  # (N, T, S, S)
        available = u.shape[1] - t_in
        t_out = available if t_out is None else t_out
        if t_in < 1 or t_out < 1 or t_out > available:
            raise ConfigError(f"Navier–Stokes data with {u.shape[1]} frames cannot give t_in={t_in} input and "
                             f"t_out={t_out} predicted frames; need t_in + t_out <= {u.shape[1]}")
        return Split(u[:, :t_in].contiguous(), u[:, t_in:t_in + t_out].contiguous())
    key_x, key_y = ("a", "u") if equation == "burgers_1d" else ("coeff", "sol")
    x = torch.from_numpy(np.asarray(data[key_x], dtype=np.float32)).unsqueeze(1)
    y = torch.from_numpy(np.asarray(data[key_y], dtype=np.float32)).unsqueeze(1)
    return Split(x, y)


class Predictor(nn.Module):
    """Wraps an FNO into the problem's full prediction: x (B, C_in, *S) → y (B, C_out, *S) in raw units.

    Navier–Stokes (autoregressive=True): C_out = t_out frames, each one FNO call on the last t_in frames.
    One-shot problems: optional per-point normalisation of input and output.
    """

    def __init__(self, model: nn.Module, autoregressive: bool, t_out: int = 1, x_normalizer=None, y_normalizer=None):
        super().__init__()
        self.model, self.autoregressive, self.t_out = model, autoregressive, t_out
        self.x_normalizer, self.y_normalizer = x_normalizer, y_normalizer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.autoregressive:
            frames, window = [], x
            with reused_matrices():  # t_out calls of the same transforms: build their matrices once
                for _ in range(self.t_out):
                    frame = self.model(window)  # (B, 1, S, S)
                    frames.append(frame)
                    window = torch.cat([window[:, 1:], frame.to(window.dtype)], dim=1)
            return torch.cat(frames, dim=1)
        if self.x_normalizer is not None:
            x = self.x_normalizer.transform(x)
        y = self.model(x)
        if self.y_normalizer is not None:
            y = self.y_normalizer.inverse_transform(y)
        return y


def make_normalizers(equation: str, train: Split):
    """Per-point UnitGaussianNormalizers (x, y) for Darcy; (None, None) otherwise."""
    if equation != "darcy_2d":
        return None, None
    from neuralop.data.transforms.normalizers import UnitGaussianNormalizer

    x_norm, y_norm = UnitGaussianNormalizer(dim=[0], eps=1e-6), UnitGaussianNormalizer(dim=[0], eps=1e-6)
    x_norm.fit(train.x)
    y_norm.fit(train.y)
    return x_norm, y_norm


def relative_l2_per_sample(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """‖pred − true‖ / ‖true‖ over everything but the first axis: (N, ...) → (N,)."""
    diff = (pred - true).flatten(1).float().norm(dim=1)
    return diff / true.flatten(1).float().norm(dim=1).clamp_min(1e-12)


def relative_l2_per_step(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Relative L2 of each predicted frame: (N, T, *S) → (N, T)."""
    diff = (pred - true).flatten(2).float().norm(dim=2)
    return diff / true.flatten(2).float().norm(dim=2).clamp_min(1e-12)
