"""A SpectralConv whose FFTs are learnable per-axis transforms (any learnable kind of
`monarch_core.TRANSFORM_KINDS`: dense, Monarch, diag), for FNO's conv_module=.

`TransformSpectralConv` subclasses neuraloperator's `SpectralConv`: the spectral weight (a tltorch
tensor), the bias, the settable `n_modes`, `transform()` and the contraction are SpectralConv's own,
so parameter names and shapes match and an FFT model's state dict loads into it (strict=False: only
the transform parameters are new). What changes is how the kept Fourier coefficients are computed:

    SpectralConv:  rfftn(norm) → fftshift → slice the kept block → contract → zero-pad → ifftshift → irfftn
    here:          one `monarch_core.LearnableDFT(n, kind, rows=kept)` per axis producing only the kept
                   coefficients (forward), contract, one LearnableDFT adjoint per axis back to the grid
                   (inverse: Tᴴ of the unscaled forward rows is the unscaled inverse DFT on the kept
                   columns, so the inverse transforms are forward-direction rows with the inverse's scale).

Initialised to the DFT rows SpectralConv keeps, the two compute the same thing (to ~1e-6). On the
real (last) axis of real data, the inverse weights coefficient l by 2 except l = 0 and the Nyquist
frequency (weight 1) and takes the real part: that is irfft's Hermitian completion.

This mirrors the private slicing / fftshift conventions of neuraloperator 2.0.x's SpectralConv
(pyproject pins >=2.0,<2.1); tests/pde/experiments/test_transform_conv.py fails with a message naming
them if they change. `resize(grid)` moves the layer's learned transforms to another grid
(see pde.experiments.resize.resize_fno).
"""
from __future__ import annotations

import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from monarch_core import LearnableDFT


def kept_indices(size: int, fft_size: int, kept: int, shifted: bool, first_block: bool) -> list[int]:
    """Frequencies SpectralConv keeps along one axis (same rules as its forward).

    size: points along the axis; fft_size: coefficients along it (size // 2 + 1 on the rfft axis);
    kept: coefficients kept (length of the sliced weight); shifted: the axis was fftshift-ed;
    first_block: SpectralConv takes the first `kept` coefficients (its rule for the last axis)
    instead of a block centred on frequency 0.
    """
    if first_block:
        index = range(kept) if kept < fft_size else range(fft_size)
    else:
        centre = fft_size // 2
        index = range(centre - kept // 2, centre + kept // 2 + kept % 2)
    return [(i - size // 2) if shifted else i for i in index]


class TransformSpectralConv(SpectralConv):
    """SpectralConv with learnable forward / inverse transforms along each spatial axis.

    Args (beyond SpectralConv's, which are passed through unchanged):
        transform: a learnable kind of monarch_core.TRANSFORM_KINDS ("dense", "monarch", "diag").
        grid_size: spatial size (one int per axis) the transforms are built for; inputs of another
            size are refused with a ValueError (a learned transform is tied to its grid).
        monarch_sizes: (b1, b2) factorisation used for every axis (default: closest to √n).
        fft_norm: as in SpectralConv ("forward" by default).

    forward(x, output_shape=None): x (B, C_in, *grid_size) real (complex with complex_data=True)
    → (B, C_out, *grid_size).
    """

    def __init__(self, in_channels, out_channels, n_modes, *, transform: str = "monarch", grid_size=None,
                 monarch_sizes=None, fft_norm: str = "forward", **kwargs):
        super().__init__(in_channels, out_channels, n_modes, fft_norm=fft_norm, **kwargs)
        if grid_size is None:
            raise ValueError("TransformSpectralConv needs grid_size (the spatial size its transforms are built for)")
        grid = [int(grid_size)] * self.order if isinstance(grid_size, int) else [int(s) for s in grid_size]
        if len(grid) != self.order:
            raise ValueError(f"grid_size {tuple(grid)} has {len(grid)} axes but n_modes has {self.order}")
        if self.fno_block_precision != "full":
            raise ValueError(f"fno_block_precision={self.fno_block_precision!r} is not supported by the learnable "
                             "transforms; use 'full' (and AMP in training for speed)")
        if self.resolution_scaling_factor is not None:
            raise ValueError("resolution_scaling_factor changes the grid between layers; the learnable transforms "
                             "are built for one grid: leave it None")
        self.transform_kind, self.monarch_sizes, self.grid_size = transform, monarch_sizes, tuple(grid)
        self.transform_residuals: list[float] = []  # per transform, set by `resize`
        self._build_transforms()

    def _inverse_frequencies(self, grid, built) -> list[list[int]]:
        # SpectralConv shifts the spectrum back with a second fftshift (not ifftshift): on a shifted axis
        # of odd size that writes frequency f's result to frequency f − 1. Reproduced, so that the
        # learnable layer equals SpectralConv on every grid.
        return [[f - 1 if self._shifted(axis) and n % 2 else f for f in freqs]
                for axis, (n, freqs) in enumerate(zip(grid, built))]

    def _build_transforms(self) -> None:
        """Transforms initialised to the DFT rows SpectralConv keeps on self.grid_size."""
        built = self._kept_frequencies(self.max_n_modes_used())
        self.built_frequencies = built
        # forward rows carry fft_norm's forward scale; the inverse's rows are forward-direction rows whose
        # adjoint is the inverse transform, so they carry the inverse's scale = the swapped norm's forward one
        swapped = {"backward": "forward", "forward": "backward", "ortho": "ortho"}[self.fft_norm]
        self.forward_transforms = nn.ModuleList(
            LearnableDFT(n, self.transform_kind, norm=self.fft_norm, sizes=self.monarch_sizes, rows=freqs)
            for n, freqs in zip(self.grid_size, built))
        self.inverse_transforms = nn.ModuleList(
            LearnableDFT(n, self.transform_kind, norm=swapped, sizes=self.monarch_sizes, rows=freqs)
            for n, freqs in zip(self.grid_size, self._inverse_frequencies(self.grid_size, built)))
        self._set_hermitian_weights()

    def _set_hermitian_weights(self) -> None:
        if not self.complex_data:
            n = self.grid_size[-1]
            weights = torch.tensor([1.0 if f == 0 or 2 * f == n else 2.0 for f in self.built_frequencies[-1]])
            self.register_buffer("hermitian_weights", weights, persistent=False)

    def resize(self, grid_size) -> list[float]:
        """Move the learned transforms to another grid in place (LearnableDFT.resized per axis).

        Every kept frequency keeps its transform row, resampled by band-limited interpolation; on a shifted
        axis whose parity changes, the inverse rows are relabelled by ±1 (SpectralConv's odd-size shift,
        see `_inverse_frequencies`), which leaves DFT rows DFT rows. Raises ValueError when SpectralConv
        would keep other frequencies on the new grid (e.g. a grid too coarse for n_modes).
        Returns (and stores in `transform_residuals`) the Monarch projection residual of each new
        transform: forward ones per axis, then inverse ones per axis (0.0 for non-Monarch kinds).
        """
        grid = [int(grid_size)] * self.order if isinstance(grid_size, int) else [int(s) for s in grid_size]
        if len(grid) != self.order:
            raise ValueError(f"grid {tuple(grid)} has {len(grid)} axes but this layer has {self.order}")
        old_grid = self.grid_size
        self.grid_size = tuple(grid)
        built = self._kept_frequencies(self.max_n_modes_used())
        if built != self.built_frequencies:
            self.grid_size = old_grid
            raise ValueError(f"grid {tuple(grid)} changes the frequencies SpectralConv keeps for n_modes "
                             f"{tuple(self.max_n_modes_used())} (from {self.built_frequencies} to {built}); "
                             "use a grid with at least n_modes points per axis")
        old_inverse = self._inverse_frequencies(old_grid, built)
        new_inverse = self._inverse_frequencies(self.grid_size, built)
        forward = [t.resized(n, self.monarch_sizes if _factors(n, self.monarch_sizes) else None)
                   for t, n in zip(self.forward_transforms, grid)]
        inverse = [t.resized(n, self.monarch_sizes if _factors(n, self.monarch_sizes) else None,
                             shift=new[0] - old[0] if new else 0)
                   for t, n, old, new in zip(self.inverse_transforms, grid, old_inverse, new_inverse)]
        self.forward_transforms, self.inverse_transforms = nn.ModuleList(forward), nn.ModuleList(inverse)
        self._set_hermitian_weights()
        self.transform_residuals = [t.projection_residual for t in forward + inverse]
        return self.transform_residuals

    def max_n_modes_used(self) -> list[int]:
        """Kept coefficients per axis at the weight's full size (the transforms are built for these)."""
        start = 1 if self.separable else 2
        return list(self.weight.shape[start:])

    def _shifted(self, axis: int) -> bool:
        """SpectralConv fftshifts every axis but the rfft one, and none in 1-D."""
        return self.order > 1 and (self.complex_data or axis < self.order - 1)

    def _fft_sizes(self) -> list[int]:
        sizes = list(self.grid_size)
        if not self.complex_data:
            sizes[-1] = sizes[-1] // 2 + 1
        return sizes

    def _kept_frequencies(self, kept_per_axis) -> list[list[int]]:
        fft_sizes = self._fft_sizes()
        result = []
        for axis, (size, fft_size, kept) in enumerate(zip(self.grid_size, fft_sizes, kept_per_axis)):
            last = axis == self.order - 1
            result.append(kept_indices(size, fft_size, min(kept, fft_size), self._shifted(axis), first_block=last))
        return result

    def _weight_slices(self):
        """SpectralConv's slicing of the weight for the current n_modes (see its forward)."""
        fft_sizes = self._fft_sizes()
        starts = [m - min(s, n) for s, n, m in zip(fft_sizes, self.n_modes, self.max_n_modes_used())]
        slices = [slice(None)] if self.separable else [slice(None), slice(None)]
        centred = starts if self.complex_data else starts[:-1]
        slices += [slice(s // 2, -s // 2) if s else slice(s, None) for s in centred]
        if not self.complex_data:
            slices += [slice(None, -starts[-1]) if starts[-1] else slice(None)]
        return tuple(slices)

    def forward(self, x: torch.Tensor, output_shape=None, **kwargs):
        spatial = tuple(x.shape[2:])
        if spatial != self.grid_size:
            raise ValueError(f"this {self.transform_kind} spectral convolution was built for grid {self.grid_size} "
                             f"but got input of shape {tuple(x.shape)}; rebuild the model with grid_size={spatial} "
                             "(build_fno(..., grid_size=...)) or resample the data")
        if output_shape is not None and tuple(output_shape) != self.grid_size:
            raise ValueError(f"output_shape {tuple(output_shape)} differs from the transforms' grid {self.grid_size}")
        weight = self.weight[self._weight_slices()]
        start = 1 if self.separable else 2
        current = list(weight.shape[start:])
        axes = list(range(self.order))
        coeffs = x if x.is_complex() else x.float()
        for axis in reversed(axes):  # the real last axis first: it shrinks most
            coeffs = self.forward_transforms[axis](coeffs, dim=2 + axis)
        freqs = self.built_frequencies
        if current != [len(f) for f in freqs]:  # n_modes lowered since construction: keep a subset
            freqs = self._kept_frequencies(current)
            for axis, kept in enumerate(freqs):
                coeffs = coeffs.index_select(2 + axis, self._positions(axis, kept, x.device))
        out = self._contract(coeffs, weight, separable=self.separable)
        if not self.complex_data:
            weights = self.hermitian_weights
            if len(freqs[-1]) != len(self.built_frequencies[-1]):
                weights = weights[self._positions(self.order - 1, freqs[-1], weights.device)]
            out = out * weights
        for axis in axes:
            transform = self.inverse_transforms[axis]
            if out.shape[2 + axis] != transform.m:  # lowered n_modes: zero-fill the dropped frequencies
                out = self._zero_fill(out, axis, freqs[axis])
            out = transform.adjoint(out, dim=2 + axis)
        if not self.complex_data:
            out = out.real
        if self.bias is not None:
            out = out + self.bias
        return out

    def _positions(self, axis: int, freqs: list[int], device) -> torch.Tensor:
        built = self.built_frequencies[axis]
        return torch.tensor([built.index(f) for f in freqs], dtype=torch.int64, device=device)

    def _zero_fill(self, out: torch.Tensor, axis: int, freqs: list[int]) -> torch.Tensor:
        shape = list(out.shape)
        shape[2 + axis] = len(self.built_frequencies[axis])
        return out.new_zeros(shape).index_copy(2 + axis, self._positions(axis, freqs, out.device), out)


def _factors(n: int, sizes) -> bool:
    """Whether the (b1, b2) factorisation `sizes` factors n."""
    return sizes is not None and int(sizes[0]) * int(sizes[1]) == n
