"""`build_fno` / `build_uno`: neuraloperator's FNO / UNO with their FFTs kept ("fft") or swapped for
learnable transforms.

    transform="fft"      neuralop.models.FNO, untouched
    transform="dense"    FNO(conv_module=TransformSpectralConv) with dense kept-row DFT matrices per axis
    transform="monarch"  ... with Monarch-factored kept-row DFTs per axis
    transform="diag"     ... with the fixed FFT times a learnable gain per kept frequency
    (any other learnable kind registered in monarch_core.transform_kinds works the same way)

Every variant is a `neuralop.models.FNO` (build_uno: a `neuralop.models.UNO`, the conv passed through
operator_block=FNOBlocks(conv_module=...)); the learnable ones start out computing exactly what the FFT
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
    grid = _grid(grid_size, n_modes)
    if transform != "fft":
        fno_kwargs["conv_module"] = functools.partial(TransformSpectralConv, transform=transform,
                                                      monarch_sizes=monarch_sizes)
    model = FNO(n_modes=n_modes, in_channels=in_channels, out_channels=out_channels,
                hidden_channels=hidden_channels, n_layers=n_layers, **fno_kwargs)
    if monarch_channels:
        replace_channel_mixing(model, monarch_channel_blocks)
    grids_follow_the_input(model)
    if transform != "fft" and grid is not None:
        materialise(model, torch.zeros(1, in_channels, *grid))
    return model


def default_uno_layout(n_modes: tuple, n_layers: int) -> dict:
    """The U of `build_uno`: full resolution in the first and last layer, half in between (layer 1 halves
    the grid, the last layer restores it; fewer than 3 layers: no change of resolution). Layers whose
    input is at half resolution keep ceil(m / 2) modes per axis.
    Returns UNO's uno_n_modes and uno_scalings (one list per layer)."""
    scalings = [[1.0] * len(n_modes) for _ in range(n_layers)]
    if n_layers >= 3:
        scalings[1] = [0.5] * len(n_modes)
        scalings[-1] = [2.0] * len(n_modes)
    coarse = [i for i in range(n_layers) if n_layers >= 3 and 2 <= i <= n_layers - 1]
    modes = [[-(-m // 2) if i in coarse else m for m in n_modes] for i in range(n_layers)]
    return {"uno_n_modes": modes, "uno_scalings": scalings}


def build_uno(transform: str = "fft", n_modes=(16, 16), in_channels: int = 1, out_channels: int = 1,
              hidden_channels: int = 32, n_layers: int = 4, grid_size=None, monarch_sizes=None, **uno_kwargs):
    """A `neuralop.models.UNO` (U-shaped neural operator) with the chosen spectral transform.

    Args:
        transform, n_modes, in_channels, out_channels, hidden_channels, n_layers, grid_size,
            monarch_sizes: as in build_fno (n_modes: the full-resolution layers' modes).
        **uno_kwargs: anything else UNO accepts; defaults: `default_uno_layout` for uno_n_modes /
            uno_scalings, hidden_channels in every layer (uno_out_channels), lifting / projection
            channels 2 · hidden_channels (FNO's ratio; UNO's own default is 256), channel_mlp_skip
            "linear" (soft-gating cannot join the horizontal skips' concatenated channels).

    The learnable conv is given to UNO through operator_block=FNOBlocks(conv_module=...):
    neuraloperator 2.0.0's UNO stores its integral_operator= argument but never uses it.
    Returns: the UNO; forward(x) maps (B, in_channels, *grid) to (B, out_channels, *grid).
    """
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    import contextlib
    import io

    from neuralop.layers.fno_block import FNOBlocks
    from neuralop.models import UNO

    n_modes = (int(n_modes),) if isinstance(n_modes, int) else tuple(int(m) for m in n_modes)
    for name in ("operator_block", "integral_operator"):
        if name in uno_kwargs:
            raise ValueError(f"build_uno chooses {name} from `transform`; do not pass {name}")
    options = {**default_uno_layout(n_modes, n_layers), "uno_out_channels": [hidden_channels] * n_layers,
               "lifting_channels": 2 * hidden_channels, "projection_channels": 2 * hidden_channels,
               "channel_mlp_skip": "linear", **uno_kwargs}
    grid = _grid(grid_size, n_modes)
    if transform != "fft":
        conv = functools.partial(TransformSpectralConv, transform=transform, monarch_sizes=monarch_sizes)
        options.update(operator_block=functools.partial(FNOBlocks, conv_module=conv), integral_operator=conv)
    with contextlib.redirect_stdout(io.StringIO()):  # neuraloperator 2.0.0's UNO prints two lines per layer
        model = UNO(in_channels, out_channels, hidden_channels, n_layers=n_layers, **options)
    grids_follow_the_input(model)
    if transform != "fft" and grid is not None:
        materialise(model, torch.zeros(1, in_channels, *grid))
    return model


def _grid(grid_size, n_modes: tuple):
    """grid_size as one int per axis (None stays None); ValueError when the axis counts differ."""
    if grid_size is None:
        return None
    grid = (int(grid_size),) * len(n_modes) if isinstance(grid_size, int) else tuple(int(s) for s in grid_size)
    if len(grid) != len(n_modes):
        raise ValueError(f"grid_size {grid} and n_modes {n_modes} must have one entry per spatial axis")
    return grid


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


def grids_follow_the_input(model: nn.Module) -> nn.Module:
    """Make neuraloperator's grid embeddings rebuild their cached coordinate grid when the input's device
    or dtype differs from the cache's.

    GridEmbedding2D/ND keep `_grid` as plain tensors (not buffers) and reuse them while the resolution is
    unchanged, whatever the input's device: after any forward on the CPU (build_fno's dry forward, an
    evaluation), `model.to("cuda")` leaves them behind and the next forward fails in torch.cat (seen on
    the H200, 2026-12-04). A forward pre-hook per embedding drops a stale cache. Returns `model`."""
    def drop_stale(module, args):
        cached = module._grid
        if cached is not None and args and (cached[0].device != args[0].device or cached[0].dtype != args[0].dtype):
            module._grid, module._res = None, None

    for module in model.modules():
        if hasattr(module, "_grid") and hasattr(module, "_res"):
            module.register_forward_pre_hook(drop_stale)
    return model


def trained_grids(model: nn.Module) -> list:
    """The native grid of every TransformSpectralConv in `model` (None if not yet built), in module order:
    what checkpoints record as the grids the transforms were trained on."""
    return [module.grid_size for module in model.modules() if isinstance(module, TransformSpectralConv)]


def build_at(model: nn.Module, grids) -> nn.Module:
    """Build every TransformSpectralConv of `model` at its grid in `grids` (module order, as
    `trained_grids` lists them): restores a checkpoint's native grids before its state dict is loaded.
    ValueError when the counts differ or a conv is already built for another grid."""
    convs = [module for module in model.modules() if isinstance(module, TransformSpectralConv)]
    grids = list(grids)
    if len(grids) != len(convs):
        raise ValueError(f"{len(grids)} recorded grids for {len(convs)} learnable spectral convolutions")
    for conv, grid in zip(convs, grids):
        conv.build(grid)
    return model


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
    from neuralop.layers.spectral_convolution import SpectralConv

    # every SpectralConv's weight (TransformSpectralConv is one): the FNO's blocks and UNO's alike
    spectral = sum(count_parameters(m.weight) for m in model.modules() if isinstance(m, SpectralConv))
    total = count_parameters(model)
    return {"total": total, "transform": transform, "spectral_weights": spectral, "monarch_channels": channel,
            "other": total - transform - spectral}
