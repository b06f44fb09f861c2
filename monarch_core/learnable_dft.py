"""Learnable Fourier transforms along one axis that start out exactly equal to (rows of) the FFT.

`LearnableDFT(n, kind, rows=...)` is the (m, n) matrix T made of the kept output rows of the length-n
(I)DFT: `forward` maps n values to the m kept coefficients, `adjoint` applies Tᴴ (m → n). The kinds
(fft, dense, monarch, diag, ...) live in the registry `monarch_core.transform_kinds`; this module only
dispatches to it.

Parametrisation rule (the same for every kind, so that one transform learning rate means the same
relative step): the parameters hold the *unscaled* transform — at initialisation the DFT rows'
entries ω^{…} of modulus 1 (dense entries, Monarch factor entries and the diag gain all have modulus
1) — and the scale (1/n, 1/√n or 1 from `norm`, or `scale=`) is a fixed float applied in
forward/adjoint. Complex parameters are stored as real tensors (..., 2) (torch.view_as_real) so that
Adam/AdamW treat real and imaginary parts as independent reals, as the Monarch authors' code does.

Speed: a Monarch transform whose matmul needs at most transform_kinds.MATERIALISE_FLOP_RATIO times the
factored cost (and whose matrix is not huge) is applied as one matmul with its (m, n) matrix,
materialised from the factors once per call (two gathers and one broadcast product, differentiably), or
once per block of `reused_matrices` (a model's forward pass that applies it many times; there the matmul
may cost up to transform_kinds.MATERIALISE_FLOP_RATIO_REUSED times the factored multiply-adds);
otherwise the factored `monarch_multiply`. Dense is always a matmul; fft and diag use torch.fft.

Resolution transfer: `resized(n_new)` resamples every kept row (a function of the input position)
by band-limited interpolation to n_new points and keeps each row's signed frequency; see `resized`.
"""
from __future__ import annotations

import torch
from torch import nn

from .dft import NORMS, dft_scale, resample_rows, row_indices, signed_frequencies
from .matrix_reuse import matrix_of
from .transform_kinds import transform_kind


class LearnableDFT(nn.Module):
    """Kept rows of a (learnable) DFT / IDFT along one dimension.

    Args:
        n: transform length.
        kind: a name in `monarch_core.TRANSFORM_KINDS` ("fft", "dense", "monarch", "diag").
        inverse: rows of the inverse transform (torch.fft.ifft) instead of the forward one.
        norm: "backward", "ortho" or "forward", as in torch.fft (sets the default scale).
        centered: fftshift ∘ F ∘ ifftshift (the MRI convention) instead of F; output row o is then
            frequency o − n//2.
        sizes: (b1, b2) of the Monarch factorisation (default: closest to √n); "monarch" only.
        dtype: complex64 or complex128 parameters and outputs.
        rows: kept frequencies (integers, taken mod n, distinct, in output order); frequency k is output
            row k mod n, or (k + n//2) mod n when centred. Default: all n output rows in order.
        scale: a float multiplying the unscaled rows; default dft_scale(n, inverse, norm).

    forward(x, dim=-1): x (..., n, ...) complex (real input is promoted to `dtype`) → (..., m, ...).
    adjoint(y, dim=-1): y (..., m, ...) → (..., n, ...), the exact conjugate transpose of `matrix()`.
    matrix(): the current scaled (m, n) complex matrix, forward(x) = x @ matrix().T along the axis.
    """

    def __init__(self, n: int, kind: str = "monarch", inverse: bool = False, norm: str = "backward",
                 centered: bool = False, sizes: tuple[int, int] | None = None,
                 dtype: torch.dtype = torch.complex64, rows=None, scale: float | None = None):
        super().__init__()
        self.kind_impl = transform_kind(kind)
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if not isinstance(dtype, torch.dtype) or not dtype.is_complex:
            raise TypeError(f"dtype must be torch.complex64 or torch.complex128, got {dtype}")
        self.n, self.kind, self.inverse, self.norm, self.centered = int(n), kind, bool(inverse), norm, bool(centered)
        self.sizes, self.dtype = (None if sizes is None else tuple(int(s) for s in sizes)), dtype
        given = signed_frequencies(range(self.n), self.n, self.centered) if rows is None else [int(r) for r in rows]
        row_list = row_indices(given, self.n, self.centered)  # default: every output row, in order
        if not row_list or len(set(row_list)) != len(row_list):
            repeated = sorted({r % self.n for r, row in zip(given, row_list) if row_list.count(row) > 1})
            raise ValueError(f"rows must be a non-empty list of distinct frequencies modulo n={self.n}, got {given}"
                             f" (duplicates after taking them mod {self.n}: {repeated})")
        self.row_list, self.m = row_list, len(row_list)
        self.all_rows = row_list == list(range(self.n))
        self.register_buffer("rows", torch.tensor(row_list, dtype=torch.int64), persistent=False)
        self.norm_scale = dft_scale(self.n, self.inverse, norm)
        self.custom_scale = scale is not None
        self.scale = float(scale) if scale is not None else self.norm_scale
        self.projection_residual = 0.0  # set by `resized`: relative error of the re-projection
        self.kind_impl.build(self)

    def extra_repr(self) -> str:
        rows = "" if self.all_rows else f", kept={self.m}"
        shapes = ", ".join(f"{name}={tuple(p.shape[:-1])}" for name, p in self.named_parameters())
        return (f"n={self.n}{rows}, kind={self.kind!r}, inverse={self.inverse}, norm={self.norm!r}, "
                f"centered={self.centered}, scale={self.scale:.4g}" + (f", {shapes}" if shapes else ""))

    def factors(self) -> tuple:
        """Complex views of the parameters: (w1, w2) for monarch, (weight,) for dense, (gain,) for diag,
        () for fft. Monarch: w1 (b1, b2, b2), w2 (b2, T, b1) with T second-factor rows kept."""
        return self.kind_impl.factors(self)

    def matrix(self) -> torch.Tensor:
        """The current (m, n) complex matrix T (scale included), so that forward(x) = x @ T.T; built once
        per block of `monarch_core.reused_matrices` (one forward pass of a model that applies T many times)."""
        return matrix_of(self, lambda: self.kind_impl.matrix(self) * self.scale)

    def parameter_count(self) -> int:
        """Number of real trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def _prepare(self, x: torch.Tensor, dim: int, size: int, what: str) -> torch.Tensor:
        if x.dim() == 0 or x.shape[dim] != size:
            raise ValueError(
                f"LearnableDFT(n={self.n}, kept={self.m}).{what} got a tensor of shape {tuple(x.shape)} whose dim "
                f"{dim} has size {x.shape[dim] if x.dim() else None}; expected size {size} along that dimension")
        if not x.is_complex():
            x = x.to(self.dtype)
        elif x.dtype != self.dtype and self.kind_impl.learnable:
            raise TypeError(f"input is {x.dtype} but this transform holds {self.dtype} parameters; cast the input")
        return x.movedim(dim, -1)

    def forward(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        x = self._prepare(x, dim, self.n, "forward")
        if self.kind_impl.materialises(self):
            y = x @ self.matrix().T
        else:
            y = self.kind_impl.apply(self, x)
        return y.movedim(-1, dim)

    def adjoint(self, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
        y = self._prepare(y, dim, self.m, "adjoint")
        if self.kind_impl.materialises(self):
            x = y @ self.matrix().conj()
        else:
            x = self.kind_impl.apply_adjoint(self, y)
        return x.movedim(-1, dim)

    def forward_real(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        """forward(x) for real x (..., n, ...) → complex (..., m, ...), without promoting x to complex.

        Materialised kinds do one real matmul with the (n, 2m) real matrix whose columns interleave Re T
        and Im T: half the multiply-adds of the complex product of a promoted x (whose imaginary part is
        zero), and neither x's complex copy nor its gradient's real part are formed; the (..., 2m) result
        is a complex view. Other kinds promote x and call `forward`.
        """
        if x.is_complex() or not self.kind_impl.materialises(self):
            return self.forward(x, dim)
        x = self._prepare_real(x, dim, self.n, "forward_real")
        real = torch.view_as_real(self.matrix()).permute(1, 0, 2).reshape(self.n, 2 * self.m)  # [k, 2j + part]
        y = torch.view_as_complex((x @ real).unflatten(-1, (self.m, 2)))
        return y.movedim(-1, dim)

    def adjoint_real(self, y: torch.Tensor, dim: int = -1, row_weights: torch.Tensor | None = None) -> torch.Tensor:
        """Re(adjoint(row_weights · y)): complex y (..., m, ...) → real (..., n, ...) (a fresh real tensor, not a
        view of a complex one: contiguous when dim is the last).

        row_weights: optional real (m,) factors per kept row (e.g. irfft's Hermitian weights), applied to
        the small matrix instead of to y. Materialised kinds do one real matmul, Re(y Tᴴ) = Re y · Re T +
        Im y · Im T, with y read as interleaved reals (a view) and the (2m, n) real matrix; others take
        the real part of `adjoint`.
        """
        if not self.kind_impl.materialises(self):
            y = y if row_weights is None else y * row_weights.reshape(-1, *[1] * (y.dim() - 1 - dim % y.dim()))
            return self.adjoint(y, dim).real.clone()
        y = self._prepare(y, dim, self.m, "adjoint_real")
        matrix = self.matrix()
        if row_weights is not None:
            matrix = matrix * row_weights.to(matrix.real.dtype)[:, None]
        real = torch.view_as_real(matrix).permute(0, 2, 1).reshape(2 * self.m, self.n)  # [2j + part, k]
        x = torch.view_as_real(y.contiguous()).flatten(-2) @ real
        return x.movedim(-1, dim)

    def _prepare_real(self, x: torch.Tensor, dim: int, size: int, what: str) -> torch.Tensor:
        if x.dim() == 0 or x.shape[dim] != size:
            raise ValueError(
                f"LearnableDFT(n={self.n}, kept={self.m}).{what} got a tensor of shape {tuple(x.shape)} whose dim "
                f"{dim} has size {x.shape[dim] if x.dim() else None}; expected size {size} along that dimension")
        return x.to(self.dtype.to_real()).movedim(dim, -1)

    def frequencies(self) -> list[int]:
        """Signed frequency of each kept row (o − n//2 when centred, else in [−n/2, n/2))."""
        return signed_frequencies(self.row_list, self.n, self.centered)

    def resized(self, n_new: int, sizes: tuple[int, int] | None = None, shift: int = 0) -> "LearnableDFT":
        """This transform at length n_new: same kind, direction, norm, centring, dtype and kept frequencies.

        Each kept row is a learned analysis function sampled at n points; it is resampled to n_new points
        by band-limited interpolation (`monarch_core.dft.resample_rows`), exact for DFT rows. The kept
        row of signed frequency k becomes the row of frequency k + shift at n_new (shift ≠ 0 relabels:
        the row is modulated by the matching pure tone, so a DFT row stays a DFT row). Refused (ValueError)
        when a kept frequency is a Nyquist row (k = −n/2, sign ambiguous) or |k + shift| ≥ n_new/2.

        Scale: recomputed from `norm` for n_new; a custom `scale=` keeps its ratio to the norm's scale
        (scale · dft_scale(n_new) / dft_scale(n)). Monarch: the resampled (m, n_new) rows are projected
        onto the kept-row Monarch layout at n_new (sizes: default closest to √n_new; a prime n_new is
        refused with ValueError) and `projection_residual` of the result holds the relative Frobenius
        error of that projection (0.0 for the other kinds). Diag keeps its gains as they are.
        """
        n_new = int(n_new)
        freqs = self.frequencies()
        if self.n % 2 == 0 and -(self.n // 2) in freqs:
            raise ValueError(f"cannot resize: LearnableDFT(n={self.n}) keeps the Nyquist row (frequency ±{self.n // 2}),"
                             " whose sign is ambiguous; drop it from rows= before resizing")
        moved = [f + int(shift) for f in freqs]
        bad = [f for f in moved if 2 * abs(f) >= n_new]
        if bad:
            raise ValueError(f"cannot resize LearnableDFT(n={self.n}) to n={n_new}: kept frequencies {bad} are not "
                             f"representable there (need |k| < {n_new}/2); use n_new > {2 * max(abs(f) for f in moved)}"
                             " or keep fewer rows")
        scale = self.scale * dft_scale(n_new, self.inverse, self.norm) / self.norm_scale if self.custom_scale else None
        new = LearnableDFT(n_new, self.kind, self.inverse, self.norm, self.centered, sizes, self.dtype,
                           rows=moved, scale=scale).to(self.rows.device)
        if self.kind_impl.learnable:
            with torch.no_grad():
                rows = resample_rows(self.kind_impl.matrix(self).detach().to(torch.complex128), n_new, self.centered)
                if shift:
                    rows = rows * self._tone(n_new, int(shift))
            new.projection_residual = self.kind_impl.load_resampled(new, self, rows)
        return new

    def _tone(self, n_new: int, shift: int) -> torch.Tensor:
        """(n_new,) pure tone moving a row's frequency label by `shift` (the row's own sign convention)."""
        x = torch.arange(n_new, dtype=torch.float64, device=self.rows.device) - (n_new // 2 if self.centered else 0)
        angle = (1.0 if self.inverse else -1.0) * 2 * torch.pi * shift * x / n_new
        return torch.polar(torch.ones_like(angle), angle)
