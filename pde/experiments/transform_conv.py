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

Any input grid, lazily built transforms, output_shape / resolution_scaling_factor:
- `grid_size=None` builds the learnable transforms for the first input grid the layer sees (its
  "native" grid, held in `grid_size`; `models.trained_grids` lists them per model, and training
  records them in every checkpoint). Parameters created in a forward do not reach an optimiser built
  before it: materialise them first, with `pde.experiments.models.materialise(model, example_input)`
  (a no-grad dry forward), which `build_fno` / `build_uno` do themselves when given grid_size; or
  `build(grid)` (models.build_at for a model), which restores a checkpoint's recorded grid.
- An input on another grid, or an output grid other than the input's (output_shape=, or
  resolution_scaling_factor), uses transforms derived from the learned ones, differentiably:
      row at the new grid = exact DFT row SpectralConv uses there
                            + band-limited resampling (monarch_core.dft.resample_rows) of the learned
                              row's deviation from its initial DFT row (relabelled by the tone of the
                              frequency shift, as LearnableDFT.resized does)
  so the layer equals SpectralConv on every grid at initialisation, and gradients from a batch on any
  grid reach the native transforms' parameters (mixed-resolution training). Derived transforms are
  applied as dense (m, n) matrices (also for Monarch, whose native factorisation need not factor the
  new size); they are recomputed at every grad-enabled call and cached per grid under no_grad until a
  parameter changes. `transforms_at(grid, output_grid)` returns the rows applied on any grid.
- A Monarch transform on a native axis of a size with no factorisation (prime, < 4) falls back to exact
  dense DFT rows (learnable), with a one-time RuntimeWarning per size (`_axis_kind`).
- Which rows the inverse needs on the output grid follows SpectralConv exactly: it zero-fills the kept
  block at the input's FFT size, fftshifts it back, and (i)rfftn with s=output crops / zero-pads the
  trailing entries; so the coefficient at array position p becomes output frequency p (mod the output
  size) when p is inside the output's array, and is dropped otherwise.
"""
from __future__ import annotations

import warnings

import torch
from neuralop.layers.spectral_convolution import SpectralConv
from torch import nn

from monarch_core import LearnableDFT, factor_pair
from monarch_core.dft import dft_scale, resample_rows


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
        grid_size: spatial size (one int per axis) the transforms are built for (their native grid);
            None: the first input's grid (lazy; see the module docstring for materialising). Inputs on
            other grids use transforms derived from the native ones.
        monarch_sizes: (b1, b2) factorisation used for every axis (default: closest to √n).
        fft_norm: as in SpectralConv ("forward" by default).

    forward(x, output_shape=None): x (B, C_in, *grid) real (complex with complex_data=True), any grid
    with at least n_modes points per axis → (B, C_out, *out) with out = output_shape, else
    round(grid · resolution_scaling_factor), else grid.
    """

    def __init__(self, in_channels, out_channels, n_modes, *, transform: str = "monarch", grid_size=None,
                 monarch_sizes=None, fft_norm: str = "forward", **kwargs):
        super().__init__(in_channels, out_channels, n_modes, fft_norm=fft_norm, **kwargs)
        if self.fno_block_precision != "full":
            raise ValueError(f"fno_block_precision={self.fno_block_precision!r} is not supported by the learnable "
                             "transforms; use 'full' (and AMP in training for speed)")
        self.transform_kind, self.monarch_sizes = transform, monarch_sizes
        self.transform_residuals: list[float] = []  # per transform, set by `resize`
        self._derived_cache: dict = {}
        self.grid_size = None
        if grid_size is not None:
            self._build_for(self._as_grid(grid_size, "grid_size"))

    def _as_grid(self, grid, what: str) -> tuple:
        grid = [int(grid)] * self.order if isinstance(grid, int) else [int(s) for s in grid]
        if len(grid) != self.order:
            raise ValueError(f"{what} {tuple(grid)} has {len(grid)} axes but n_modes has {self.order}")
        return tuple(grid)

    def _build_for(self, grid: tuple) -> None:
        self.grid_size = grid
        self._build_transforms()

    def build(self, grid) -> None:
        """Create the learnable transforms for `grid` (their native grid) now, on the layer's device: how a
        checkpoint's recorded grid is restored before its state dict is loaded. A layer already built for
        that grid is left as it is; one built for another grid raises ValueError (see `resize`)."""
        grid = self._as_grid(grid, "grid")
        if self.grid_size is not None:
            if self.grid_size != grid:
                raise ValueError(f"the transforms are already built for grid {self.grid_size}, not {grid}")
            return
        device = next(self.parameters()).device
        self._build_for(grid)
        self.to(device)

    @property
    def trained_grids(self) -> tuple:
        """The grid the learnable transforms live on (None before the first forward when built lazily)."""
        return self.grid_size

    def _inverse_frequencies(self, grid, built) -> list[list[int]]:
        # SpectralConv shifts the spectrum back with a second fftshift (not ifftshift), and on every axis but
        # the last: on a shifted axis of odd size that writes frequency f's result to frequency f − 1, and on
        # complex data's last axis (shifted once) to f + n//2. Reproduced, so that the learnable layer equals
        # SpectralConv on every grid.
        result = []
        for axis, (n, freqs) in enumerate(zip(grid, built)):
            shifts = 0 if not self._shifted(axis) else 2 if axis < self.order - 1 else 1
            positions = [(f + shifts * (n // 2)) % n for f in freqs]
            result.append([p if 2 * p < n or (not self.complex_data and axis == self.order - 1) else p - n
                           for p in positions])
        return result

    def _build_transforms(self) -> None:
        """Transforms initialised to the DFT rows SpectralConv keeps on self.grid_size."""
        built = self._kept_frequencies(self.max_n_modes_used())
        self.built_frequencies = built
        # forward rows carry fft_norm's forward scale; the inverse's rows are forward-direction rows whose
        # adjoint is the inverse transform, so they carry the inverse's scale = the swapped norm's forward one
        swapped = {"backward": "forward", "forward": "backward", "ortho": "ortho"}[self.fft_norm]
        kinds = [self._axis_kind(n) for n in self.grid_size]
        self.forward_transforms = nn.ModuleList(
            LearnableDFT(n, kind, norm=self.fft_norm, sizes=sizes, rows=freqs)
            for (kind, sizes), n, freqs in zip(kinds, self.grid_size, built))
        self.inverse_transforms = nn.ModuleList(
            LearnableDFT(n, kind, norm=swapped, sizes=sizes, rows=freqs)
            for (kind, sizes), n, freqs in zip(kinds, self.grid_size,
                                              self._inverse_frequencies(self.grid_size, built)))
        self._set_hermitian_weights()

    def _axis_kind(self, n: int) -> tuple:
        """(kind, sizes) of the transforms along an axis of n points. A Monarch transform needs n = b1·b2
        with b1, b2 > 1: with the default factorisation, an n that has none (prime, < 4) gets exact dense
        DFT rows instead (still learnable, so the layer runs on every grid, as SpectralConv does), with a
        one-time note per size. Explicit monarch_sizes that do not factor n stay an error (ValueError)."""
        if self.transform_kind != "monarch" or self.monarch_sizes is not None:
            return self.transform_kind, self.monarch_sizes
        try:
            factor_pair(n)
        except ValueError:
            _note_once(f"TransformSpectralConv: an axis of {n} points has no Monarch factorisation (n = b1·b2 with "
                       "b1, b2 > 1); its transforms are exact dense DFT rows (learnable) instead. Pad the grid to "
                       "a composite size for Monarch transforms along it.")
            return "dense", None
        return "monarch", None

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

    def _fft_sizes(self, grid=None) -> list[int]:
        sizes = list(self.grid_size if grid is None else grid)
        if not self.complex_data:
            sizes[-1] = sizes[-1] // 2 + 1
        return sizes

    def _kept_frequencies(self, kept_per_axis, grid=None) -> list[list[int]]:
        grid = self.grid_size if grid is None else grid
        fft_sizes = self._fft_sizes(grid)
        result = []
        for axis, (size, fft_size, kept) in enumerate(zip(grid, fft_sizes, kept_per_axis)):
            last = axis == self.order - 1
            result.append(kept_indices(size, fft_size, min(kept, fft_size), self._shifted(axis), first_block=last))
        return result

    def _weight_slices(self, grid=None):
        """SpectralConv's slicing of the weight for the current n_modes on `grid` (see its forward)."""
        fft_sizes = self._fft_sizes(grid)
        starts = [m - min(s, n) for s, n, m in zip(fft_sizes, self.n_modes, self.max_n_modes_used())]
        slices = [slice(None)] if self.separable else [slice(None), slice(None)]
        centred = starts if self.complex_data else starts[:-1]
        slices += [slice(s // 2, -s // 2) if s else slice(s, None) for s in centred]
        if not self.complex_data:
            slices += [slice(None, -starts[-1]) if starts[-1] else slice(None)]
        return tuple(slices)

    def forward(self, x: torch.Tensor, output_shape=None, **kwargs):
        """x (B, C_in, *grid) → (B, C_out, *out_grid). Under autocast (AMP) the transforms and the spectral
        contraction run in float32 / complex64: autocast would run the materialised kinds' real matmuls in
        float16, whose complex view on CUDA is complex32, which the next axis's complex64 transform refuses
        (seen on the H200), and float16 rows would round away what the transforms learn."""
        if x.device.type in ("cuda", "cpu") and torch.is_autocast_enabled(x.device.type):
            with torch.autocast(x.device.type, enabled=False):
                return self._forward(x if x.is_complex() else x.float(), output_shape)
        return self._forward(x, output_shape)

    def _forward(self, x: torch.Tensor, output_shape) -> torch.Tensor:
        grid = tuple(x.shape[2:])
        if self.grid_size is None:  # lazy: the first grid seen becomes the native one
            self._build_for(self._as_grid(grid, "input grid"))
            self.to(x.device)
        if output_shape is not None:
            out_grid = self._as_grid(output_shape, "output_shape")
        elif self.resolution_scaling_factor is not None:
            out_grid = tuple(round(s * r) for s, r in zip(grid, self.resolution_scaling_factor))
        else:
            out_grid = grid
        if grid != self.grid_size or out_grid != grid:
            return self._forward_derived(x, grid, out_grid)
        weight = self.weight[self._weight_slices()]
        start = 1 if self.separable else 2
        current = list(weight.shape[start:])
        axes = list(range(self.order))
        coeffs = x if x.is_complex() else x.float()
        for axis in reversed(axes):  # the real last axis first: it shrinks most
            transform = self.forward_transforms[axis]
            coeffs = transform(coeffs, dim=2 + axis) if coeffs.is_complex() else transform.forward_real(coeffs, 2 + axis)
        freqs = self.built_frequencies
        if current != [len(f) for f in freqs]:  # n_modes lowered since construction: keep a subset
            freqs = self._kept_frequencies(current)
            for axis, kept in enumerate(freqs):
                coeffs = coeffs.index_select(2 + axis, self._positions(axis, kept, x.device))
        out = self._contract(coeffs, weight, separable=self.separable)
        for axis in axes:
            transform = self.inverse_transforms[axis]
            if out.shape[2 + axis] != transform.m:  # lowered n_modes: zero-fill the dropped frequencies
                out = self._zero_fill(out, axis, freqs[axis])
            if self.complex_data or axis < self.order - 1:
                out = transform.adjoint(out, dim=2 + axis)
            else:  # the real axis, last: irfft's Hermitian completion is Re(weights · Tᴴ)
                out = transform.adjoint_real(out, 2 + axis, row_weights=self.hermitian_weights)
        if self.bias is not None:
            out = out + self.bias
        return out

    def transforms_at(self, grid, output_grid=None) -> tuple[list, list]:
        """The scaled transform rows this layer applies to an input on `grid` with output on `output_grid`
        (default: grid): (forward, inverse), one complex matrix per axis; forward[a] (k_a, grid[a]) maps
        the axis to its kept coefficients (coeffs = x @ forward[a].T), inverse[a] (k_a, out[a]) maps them
        back (x = coeffs @ inverse[a].conj(), after the Hermitian weights on the rfft axis). On the native
        grid these are the learned transforms' matrix(); elsewhere derived from them (module docstring)."""
        grid = self._as_grid(grid, "grid")
        out_grid = grid if output_grid is None else self._as_grid(output_grid, "output_grid")
        plan = self._derived_plan(grid, out_grid)
        return plan["forward"], plan["inverse"]

    def _derived_plan(self, grid: tuple, out_grid: tuple) -> dict:
        """Weight slices, per-axis derived forward / inverse matrices and the rfft axis's Hermitian weights
        for an input on `grid` and an output on `out_grid` (see the module docstring)."""
        slices = self._weight_slices(grid)
        start = 1 if self.separable else 2
        kept = [len(range(*sl.indices(m))) for sl, m in zip(slices[start:], self.max_n_modes_used())]
        freqs_in = self._kept_frequencies(kept, grid)
        native_inverse = self._inverse_frequencies(self.grid_size, self.built_frequencies)
        swapped = {"backward": "forward", "forward": "backward", "ortho": "ortho"}[self.fft_norm]
        positions, forward, inverse, hermitian = [], [], [], None
        for axis in range(self.order):
            built = self.built_frequencies[axis]
            if all(f in built for f in freqs_in[axis]):  # the same frequencies (or a subset: lowered n_modes)
                pos = [built.index(f) for f in freqs_in[axis]]
            elif len(freqs_in[axis]) == len(built):
                # SpectralConv keeps other frequencies for the same weight entries here (complex data's last
                # axis takes the first entries of the shifted spectrum): weight entry i keeps its row
                pos = list(range(len(built)))
            else:
                raise ValueError(f"on grid {grid} SpectralConv keeps frequencies {freqs_in[axis]} along axis {axis}, "
                                 f"which the transforms built on grid {self.grid_size} ({built}) do not hold; use a "
                                 "grid with at least n_modes points per axis")
            positions.append(pos)
            forward.append(self._derived(self.forward_transforms[axis], ("forward", axis, grid[axis]), pos,
                                         [built[i] for i in pos], freqs_in[axis], grid[axis],
                                         dft_scale(grid[axis], False, self.fft_norm)))
            n, n_out = grid[axis], out_grid[axis]
            real_axis = not self.complex_data and axis == self.order - 1
            targets = []
            for f in freqs_in[axis]:
                # array position after SpectralConv's second fftshift at the input's size, then cropped /
                # zero-padded at the end by (i)rfftn's s=
                # (SpectralConv's second fftshift skips the last axis, also for complex data)
                shifts = 0 if not self._shifted(axis) else 2 if axis < self.order - 1 else 1
                p = (f + shifts * (n // 2)) % n
                inside = p < (n_out // 2 + 1 if real_axis else n_out)
                targets.append((p if real_axis or 2 * p < n_out else p - n_out) if inside else None)
            inverse.append(self._derived(self.inverse_transforms[axis], ("inverse", axis, n, n_out), pos,
                                         [native_inverse[axis][i] for i in pos], targets, n_out,
                                         dft_scale(n_out, False, swapped)))
            if real_axis:
                hermitian = [0.0 if t is None else 1.0 if t == 0 or 2 * t == n_out else 2.0 for t in targets]
        return {"slices": slices, "forward": forward, "inverse": inverse, "hermitian": hermitian}

    def _forward_derived(self, x: torch.Tensor, grid: tuple, out_grid: tuple) -> torch.Tensor:
        """forward on an input grid or output grid other than the native one (see the module docstring)."""
        plan = self._derived_plan(grid, out_grid)
        weight = self.weight[plan["slices"]]
        coeffs = x if x.is_complex() else x.to(torch.complex64)
        for axis in reversed(range(self.order)):  # the real last axis first: it shrinks most
            coeffs = (coeffs.movedim(2 + axis, -1) @ plan["forward"][axis].T).movedim(-1, 2 + axis)
        out = self._contract(coeffs, weight, separable=self.separable)
        for axis in range(self.order):
            if plan["hermitian"] is not None and axis == self.order - 1:
                out = out * torch.tensor(plan["hermitian"], device=out.device)
            out = (out.movedim(2 + axis, -1) @ plan["inverse"][axis].conj()).movedim(-1, 2 + axis)
        if not self.complex_data:
            out = out.real
        if self.bias is not None:
            out = out + self.bias
        return out

    def _derived(self, transform: LearnableDFT, key: tuple, positions: list[int], sources: list[int],
                 targets: list, n_new: int, scale: float) -> torch.Tensor:
        """(k, n_new) scaled rows at another grid derived from `transform`'s learned rows `positions`:
        the exact DFT row of each target frequency + the resampled, relabelled deviation of the learned
        row from its initial DFT row (the DFT row of its source frequency); a None target is a zero row."""
        cacheable = not torch.is_grad_enabled()
        key = key + (tuple(positions), tuple(targets))
        # the device too: model.to(device) keeps the Parameter objects (and their versions)
        versions = (tuple(p._version for p in transform.parameters()) + tuple(id(p) for p in transform.parameters())
                    + (str(transform.rows.device),))
        if cacheable and key in self._derived_cache and self._derived_cache[key][0] == versions:
            return self._derived_cache[key][1]
        learned = transform.kind_impl.matrix(transform)[positions]  # unscaled (k, n)
        n, device = transform.n, learned.device
        real = torch.float64 if learned.dtype == torch.complex128 else torch.float32
        source = torch.tensor(sources, dtype=real, device=device)[:, None]
        target = torch.tensor([0 if t is None else t for t in targets], dtype=real, device=device)[:, None]
        x_old = torch.arange(n, dtype=real, device=device)[None, :]
        x_new = torch.arange(n_new, dtype=real, device=device)[None, :]
        deviation = learned - torch.polar(torch.ones_like(source * x_old), -2 * torch.pi * source * x_old / n)
        tone = torch.polar(torch.ones_like(target * x_new), -2 * torch.pi * (target - source) * x_new / n_new)
        exact = torch.polar(torch.ones_like(target * x_new), -2 * torch.pi * target * x_new / n_new)
        rows = exact + tone * resample_rows(deviation, n_new)
        keep = torch.tensor([t is not None for t in targets], device=device)[:, None]
        rows = torch.where(keep, rows, torch.zeros_like(rows)) * scale
        if cacheable:
            self._derived_cache[key] = (versions, rows)
        return rows

    def _positions(self, axis: int, freqs: list[int], device) -> torch.Tensor:
        built = self.built_frequencies[axis]
        return torch.tensor([built.index(f) for f in freqs], dtype=torch.int64, device=device)

    def _zero_fill(self, out: torch.Tensor, axis: int, freqs: list[int]) -> torch.Tensor:
        shape = list(out.shape)
        shape[2 + axis] = len(self.built_frequencies[axis])
        return out.new_zeros(shape).index_copy(2 + axis, self._positions(axis, freqs, out.device), out)


_NOTED: set = set()


def _note_once(message: str) -> None:
    """warnings.warn `message` (RuntimeWarning) the first time it is seen in this process."""
    if message not in _NOTED:
        _NOTED.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


def _factors(n: int, sizes) -> bool:
    """Whether the (b1, b2) factorisation `sizes` factors n."""
    return sizes is not None and int(sizes[0]) * int(sizes[1]) == n
