"""`resize_fno`: a learnable-transform FNO moved to another grid (finer or coarser).

neuraloperator's FNO is resolution-independent: its FFTs adapt to the input. A TransformSpectralConv's
learned transforms are tied to one grid; `resize_fno` resamples them to a new one
(`TransformSpectralConv.resize` → `monarch_core.LearnableDFT.resized`: band-limited interpolation of
each kept transform row, then for Monarch a Frobenius-optimal re-projection). At initialisation the
result equals neuraloperator's FNO with the same weights on the new grid.
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from .transform_conv import TransformSpectralConv


def resize_fno(model: nn.Module, grid) -> tuple[nn.Module, dict[str, list[float]]]:
    """Return (resized deep copy of model, projection residuals) for inputs of spatial size `grid`.

    Args:
        model: an FNO from `build_fno` (any transform kind).
        grid: the new input spatial size (int or one int per axis); FNO's domain padding is applied to it
            as in build_fno.
    Returns:
        (model, residuals): the copy with every TransformSpectralConv resized (an FFT model, which has
        none, is returned itself), and {layer name: relative Frobenius residual of each new transform
        (forward per axis, then inverse per axis; 0.0 except for Monarch)}, also stored on each layer as
        `transform_residuals`.
    Raises:
        ValueError when the grid cannot hold the kept modes (see TransformSpectralConv.resize).
    """
    names = [name for name, m in model.named_modules() if isinstance(m, TransformSpectralConv)]
    if not names:
        return model, {}
    resized = copy.deepcopy(model)
    grid = _conv_grid(resized, grid, names)
    modules = dict(resized.named_modules())
    return resized, {name: modules[name].resize(grid) for name in names}


def _conv_grid(model: nn.Module, grid, names) -> tuple:
    """The spatial size the spectral convolutions see: `grid` after the model's domain padding."""
    order = len(dict(model.named_modules())[names[0]].grid_size)
    grid = (int(grid),) * order if isinstance(grid, int) else tuple(int(s) for s in grid)
    padding = getattr(model, "domain_padding", None)
    if padding is None:
        return grid
    return tuple(padding.pad(torch.zeros(1, 1, *grid)).shape[2:])
