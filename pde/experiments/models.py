"""`build_fno`: neuraloperator's FNO with its FFTs kept ("fft") or swapped for learnable transforms.

    transform="fft"      neuralop.models.FNO, untouched
    transform="dense"    FNO(conv_module=TransformSpectralConv) with dense kept-row DFT matrices per axis
    transform="monarch"  ... with Monarch-factored kept-row DFTs per axis
    transform="diag"     ... with the fixed FFT times a learnable gain per kept frequency
    (any other learnable kind registered in monarch_core.transform_kinds works the same way)

Every variant is a `neuralop.models.FNO`; the learnable ones start out computing exactly what the FFT
model with the same weights computes, and load its state dict with strict=False.
`monarch_channels=True` additionally replaces every 1×1 channel-mixing convolution (lifting,
projection, channel MLPs, linear skips) by `monarch_core.MonarchLinear`.
"""
from __future__ import annotations

import functools

import torch
from torch import nn

from monarch_core import TRANSFORM_KINDS, LearnableDFT, MonarchLinear, count_parameters

from .transform_conv import TransformSpectralConv

TRANSFORMS = TRANSFORM_KINDS  # "fft" = neuraloperator's FNO; every other kind = learnable transforms


def build_fno(transform: str = "fft", n_modes=(16, 16), in_channels: int = 1, out_channels: int = 1,
              hidden_channels: int = 32, n_layers: int = 4, grid_size=None, monarch_sizes=None,
              monarch_channels: bool = False, monarch_channel_blocks: int = 4, **fno_kwargs):
    """A `neuralop.models.FNO` with the chosen spectral transform.

    Args:
        transform: a name in monarch_core.TRANSFORM_KINDS ("fft", "dense", "monarch", "diag").
        n_modes: kept modes per axis in neuraloperator's convention: the full count of a centred block
            on every axis but the last, and on the last (rfft) axis n_modes[-1] // 2 + 1 coefficients
            (SpectralConv's n_modes setter). The original FNO code's modes=12 in 2-D (frequencies −12…11,
            then 0…11) is n_modes=(24, 22); in 1-D its modes=16 (frequencies 0…15) is n_modes=(30,)
            (n_modes=(32,) would keep 17).
        in_channels, out_channels, hidden_channels, n_layers: as in FNO.
        grid_size: the input's spatial size (int or one int per axis) the learnable transforms are built
            for (by a dry forward, `materialise`); None: built at the first forward (call `materialise`
            before creating the optimiser). Other input grids work too (derived transforms).
        monarch_sizes: (b1, b2) factorisation of every Monarch transform (default closest to √n).
        monarch_channels: replace the 1×1 channel-mixing convolutions by MonarchLinear layers.
        monarch_channel_blocks: blocks per MonarchLinear factor.
        **fno_kwargs: anything else FNO accepts (domain_padding, use_channel_mlp, positional_embedding...).

    Returns: the FNO; forward(x) maps (B, in_channels, *grid) to (B, out_channels, *grid).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    from neuralop.models import FNO

    n_modes = (int(n_modes),) if isinstance(n_modes, int) else tuple(int(m) for m in n_modes)
    if "conv_module" in fno_kwargs:
        raise ValueError("build_fno chooses conv_module from `transform`; do not pass conv_module")
    if transform != "fft":
        grid = None
        if grid_size is not None:
            grid = (int(grid_size),) * len(n_modes) if isinstance(grid_size, int) else tuple(int(s) for s in grid_size)
            if len(grid) != len(n_modes):
                raise ValueError(f"grid_size {grid} and n_modes {n_modes} must have one entry per spatial axis")
        fno_kwargs["conv_module"] = functools.partial(TransformSpectralConv, transform=transform,
                                                      monarch_sizes=monarch_sizes)
    model = FNO(n_modes=n_modes, in_channels=in_channels, out_channels=out_channels,
                hidden_channels=hidden_channels, n_layers=n_layers, **fno_kwargs)
    if monarch_channels:
        replace_channel_mixing(model, monarch_channel_blocks)
    if transform != "fft" and grid is not None:
        materialise(model, torch.zeros(1, in_channels, *grid))
    return model


def materialise(model: nn.Module, example: torch.Tensor) -> nn.Module:
    """Build every lazily-built learnable transform of `model` with one no-grad dry forward of `example`
    (B, C_in, *grid): each TransformSpectralConv creates its transforms for the grid it sees there (after
    domain padding, resolution changes between UNO layers...). Call it before building the optimiser:
    parameters created later would not be optimised. build_fno does it when given grid_size."""
    training = model.training
    model.eval()
    with torch.no_grad():
        model(example.to(next(model.parameters()).device))
    model.train(training)
    return model


def trained_grids(model: nn.Module) -> list:
    """The native grid of every TransformSpectralConv in `model` (None if not yet built), in module order:
    what checkpoints record as the grids the transforms were trained on."""
    return [module.grid_size for module in model.modules() if isinstance(module, TransformSpectralConv)]


class MonarchPointwise(nn.Module):
    """A 1×1 convolution over channels with a Monarch weight: (B, C_in, *S) → (B, C_out, *S)."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool, nblocks: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels  # read by neuralop's wrappers
        self.linear = MonarchLinear(in_channels, out_channels, nblocks=nblocks, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.movedim(1, -1)).movedim(-1, 1)


def replace_channel_mixing(model: nn.Module, nblocks: int = 4) -> int:
    """Swap every kernel-size-1 Conv1d/2d/3d in `model` for a `MonarchPointwise`; returns how many."""
    count = 0
    for name, child in list(model.named_children()):
        is_pointwise = isinstance(child, nn.modules.conv._ConvNd) and all(k == 1 for k in child.kernel_size)
        if is_pointwise and child.groups == 1:
            setattr(model, name, MonarchPointwise(child.in_channels, child.out_channels, child.bias is not None,
                                                  nblocks))
            count += 1
        else:
            count += replace_channel_mixing(child, nblocks)
    return count


def parameter_counts(model: nn.Module) -> dict:
    """Real trainable parameters: total, in learnable transforms, in spectral weights, in Monarch channel
    layers, and the rest (complex parameters count twice)."""
    transform = sum(count_parameters(m) for m in model.modules() if isinstance(m, LearnableDFT))
    channel = sum(count_parameters(m) for m in model.modules() if isinstance(m, MonarchPointwise))
    spectral = 0
    for module in model.modules():
        if hasattr(module, "fno_blocks"):
            for conv in module.fno_blocks.convs:
                spectral += count_parameters(conv.weight)
    total = count_parameters(model)
    return {"total": total, "transform": transform, "spectral_weights": spectral, "monarch_channels": channel,
            "other": total - transform - spectral}
