"""The registry of transform kinds behind `LearnableDFT`: one class per kind.

A kind says whether it is learnable, which parameters it creates for a transform (their initial values
are the *unscaled* DFT rows: entries of modulus 1, see `monarch_core.learnable_dft`), how it applies
the unscaled (m, n) matrix T and its adjoint along the last axis, how it materialises T for the
materialised matmul path, how it takes a band-limited resampled T at a new length (`load_resampled`), and
its cost. Adding a kind = one `TransformKind` subclass decorated with `@register` (+ its tests);
`LearnableDFT`, `transform_cost` and every `TRANSFORM_KINDS` user pick it up.

    fft      torch.fft, fixed (no parameters)
    dense    a free (m, n) complex matrix                         2·m·n real parameters
    monarch  Monarch factors; only second-factor rows holding a kept frequency are stored
    diag     torch.fft followed by a learnable gain per kept frequency (init 1)   2·m real parameters

The kind methods receive the `LearnableDFT` module `t` (attributes n, m, rows (m,) int64 buffer,
row_list, inverse, norm, centered, sizes, dtype, scale) and register / read parameters on it.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .cost import monarch_cost
from .dft import dft_monarch, dft_rows, unscaled_norm
from .factors import factor_pair
from .matrix_reuse import reusing_matrices
from .multiply import monarch_multiply, monarch_multiply_adjoint
from .projection import project_to_layout

# A Monarch transform is applied as one matmul with its materialised (m, n) matrix (built from the factors
# once per call, differentiably) instead of the factored multiply when the matmul needs at most
# MATERIALISE_FLOP_RATIO times the factored multiply-adds and the matrix has at most
# MATERIALISE_MAX_ELEMENTS entries (its memory, and its gradient's). Measured on one CPU thread:
# batch 5120, complex64, forward+backward: 64 points / 24 kept rows (ratio 2) 1.6x faster materialised,
# all 64 rows (ratio 4) equal, all 512 rows (ratio 10) 1.9x slower; the Burgers FNO training step
# (s = 1024, 16 kept rows: ratio 0.48) 2.6x the FFT FNO's factored, 0.95x materialised. The ratio, not n,
# decides: an earlier n ≤ 512 cap sent few-row transforms of long axes to the slower factored path.
MATERIALISE_FLOP_RATIO = 2.0
# Inside `reused_matrices` (one build serves every call of a forward pass) the build is paid once, so the
# matmul may cost more multiply-adds than the factored multiply and still win: 64-point axes with all rows
# (ratio 4) materialised in MoDL's forward pass took its Monarch step from 3.4x to 1.5x the FFT one (2 threads).
MATERIALISE_FLOP_RATIO_REUSED = 8.0
MATERIALISE_MAX_ELEMENTS = 2**22

_REGISTRY: dict[str, "TransformKind"] = {}
_SWAPPED_NORM = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def register(cls):
    """Class decorator: add one instance of a TransformKind subclass to the registry under cls.name."""
    _REGISTRY[cls.name] = cls()
    return cls


def transform_kind(name: str) -> "TransformKind":
    """The registered kind called `name` (ValueError naming the known kinds otherwise)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"transform kind must be one of {tuple(_REGISTRY)}, got {name!r}") from None


def _as_rows(rows, n: int) -> list[int]:
    """Row list of a transform: None = all n rows, an int m = rows 0..m−1, else the given rows mod n."""
    if rows is None:
        return list(range(n))
    return list(range(rows)) if isinstance(rows, int) else [int(r) % n for r in rows]


def fft_along_last(x: torch.Tensor, inverse: bool, norm: str, centered: bool) -> torch.Tensor:
    """torch.fft.fft / ifft along the last axis (centred: fftshift ∘ F ∘ ifftshift)."""
    fn = torch.fft.ifft if inverse else torch.fft.fft
    if not centered:
        return fn(x, norm=norm)
    return torch.fft.fftshift(fn(torch.fft.ifftshift(x, dim=-1), norm=norm), dim=-1)


def fixed_rows(t, x: torch.Tensor) -> torch.Tensor:
    """Scaled kept rows of the fixed (I)FFT applied along the last axis: (..., n) → (..., m)."""
    exact = t.scale == t.norm_scale  # let torch.fft apply the scale when it is the norm's own
    y = fft_along_last(x, t.inverse, t.norm if exact else unscaled_norm(t.inverse), t.centered)
    if not exact:
        y = y * t.scale
    return y if t.all_rows else y.index_select(-1, t.rows)


def fixed_rows_adjoint(t, y: torch.Tensor) -> torch.Tensor:
    """Adjoint of `fixed_rows`: zero-fill the dropped rows, then the inverse transform with the swapped norm."""
    if not t.all_rows:
        y = y.new_zeros(*y.shape[:-1], t.n).index_copy(-1, t.rows, y)
    exact = t.scale == t.norm_scale
    norm = _SWAPPED_NORM[t.norm if exact else unscaled_norm(t.inverse)]
    # (shift∘F∘ishift)ᴴ = shift∘Fᴴ∘ishift, and the adjoint of fft(norm) is ifft with the swapped norm
    x = fft_along_last(y, not t.inverse, norm, t.centered)
    return x if exact else x * t.scale


class TransformKind:
    """Base class: the fixed FFT is the fallback of every method a kind does not override."""

    name = ""
    learnable = True

    def build(self, t) -> None:
        """Register the parameters / buffers of transform t, initialised to the unscaled DFT rows."""

    def materialises(self, t) -> bool:
        """Apply t as one matmul with `matrix(t)` (True) or through `apply` (False)."""
        return False

    def matrix(self, t) -> torch.Tensor:
        """The current *unscaled* (m, n) complex matrix, differentiable in the parameters."""
        return dft_rows(t.n, t.rows, t.inverse, t.centered, t.dtype, t.rows.device)

    def apply(self, t, x: torch.Tensor) -> torch.Tensor:
        """Scaled y = T x along the last axis: (..., n) → (..., m)."""
        return fixed_rows(t, x)

    def apply_adjoint(self, t, y: torch.Tensor) -> torch.Tensor:
        """Scaled x = Tᴴ y along the last axis: (..., m) → (..., n)."""
        return fixed_rows_adjoint(t, y)

    def factors(self, t) -> tuple:
        """Complex views of the parameters (empty for a fixed kind)."""
        return ()

    def load_resampled(self, new, old, resampled: torch.Tensor) -> float:
        """Set `new`'s parameters from `resampled` (the old unscaled rows at new.n: (m, new.n)) and from
        `old`; return the relative Frobenius residual ‖resampled − matrix(new)‖ / ‖resampled‖."""
        return 0.0

    def parameter_count(self, n: int, rows=None, sizes=None) -> int:
        """Real parameters of a length-n transform keeping `rows` (None: all n; an int m: m rows)."""
        return 0

    def flops(self, n: int, rows=None, sizes=None) -> int:
        """Real FLOPs per transformed vector (complex multiply-add = 8, FFT = 5·n·log2 n)."""
        return int(5 * n * math.log2(n))


@register
class FFTKind(TransformKind):
    name = "fft"
    learnable = False


@register
class DenseKind(TransformKind):
    """A free (m, n) complex matrix, stored as `weight` (m, n, 2)."""

    name = "dense"

    def build(self, t) -> None:
        matrix = dft_rows(t.n, t.rows, t.inverse, t.centered, torch.complex128).to(t.dtype)
        t.weight = nn.Parameter(torch.view_as_real(matrix).clone())

    def materialises(self, t) -> bool:
        return True

    def matrix(self, t) -> torch.Tensor:
        return torch.view_as_complex(t.weight)

    def factors(self, t) -> tuple:
        return (torch.view_as_complex(t.weight),)

    def load_resampled(self, new, old, resampled: torch.Tensor) -> float:
        with torch.no_grad():
            new.weight.copy_(torch.view_as_real(resampled.to(new.dtype)))
        return 0.0

    def parameter_count(self, n: int, rows=None, sizes=None) -> int:
        return 2 * n * len(_as_rows(rows, n))

    def flops(self, n: int, rows=None, sizes=None) -> int:
        return 8 * n * len(_as_rows(rows, n))


@register
class MonarchKind(TransformKind):
    """T = S · M · Π: input permutation Π of `dft_monarch` (a transpose of x read as (b2, b1)), a
    Monarch matrix M with w1 (b1, b2, b2) and w2 (b2, T, b1) (only the T second-factor rows that
    hold a kept frequency), and the selection S of the kept compact outputs (buffer `select`).
    Compact output t'·b2 + c is row kept_t[t'] of w2's block c, i.e. frequency kept_t[t']·b2 + c.
    """

    name = "monarch"

    @staticmethod
    def layout(n: int, rows, sizes=None):
        """(b1, b2, kept_t list, select list) of the kept-row Monarch layout."""
        b1, b2 = factor_pair(n, sizes)
        rows = _as_rows(rows, n)
        kept_t = sorted({r // b2 for r in rows})
        position = {t: i for i, t in enumerate(kept_t)}
        return b1, b2, kept_t, [position[r // b2] * b2 + r % b2 for r in rows]

    def build(self, t) -> None:
        b1, b2, kept_t, select = self.layout(t.n, t.row_list, t.sizes)
        _, w1, w2 = dft_monarch(t.n, t.inverse, unscaled_norm(t.inverse), t.centered, torch.complex128,
                                (b1, b2))
        t.register_buffer("select", torch.tensor(select, dtype=torch.int64), persistent=False)
        t.register_buffer("kept_t", torch.tensor(kept_t, dtype=torch.int64), persistent=False)
        t.select_is_identity = select == list(range(len(kept_t) * b2))
        t.w1 = nn.Parameter(torch.view_as_real(w1.to(t.dtype)).clone())  # (b1, b2, b2, 2)
        t.w2 = nn.Parameter(torch.view_as_real(w2[:, kept_t].to(t.dtype)).clone())  # (b2, T, b1, 2)

    def materialises(self, t) -> bool:
        if t.m * t.n > MATERIALISE_MAX_ELEMENTS:
            return False
        b1, b2, kept = t.w1.shape[0], t.w1.shape[1], t.w2.shape[1]
        ratio = MATERIALISE_FLOP_RATIO_REUSED if reusing_matrices() else MATERIALISE_FLOP_RATIO
        return t.m * t.n <= ratio * (b1 * b2 * b2 + b2 * kept * b1)

    def factors(self, t) -> tuple:
        return torch.view_as_complex(t.w1), torch.view_as_complex(t.w2)

    @staticmethod
    def _permuted_matrix(w1: torch.Tensor, w2: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
        """Rows `select` of the Monarch matrix in the permuted input order: (m, b1, b2) indexed
        [row, j, i] with M[t·b2 + c, j·b2 + i] = w2[c, t, j] · w1[j, c, i] (see monarch_multiply)."""
        b2 = w1.shape[1]
        c, tt = select % b2, select // b2
        return torch.einsum("rj,jri->rji", w2[c, tt], w1[:, c])

    def matrix(self, t) -> torch.Tensor:
        w1, w2 = self.factors(t)
        # input x[b1·i + j] is read at permuted position j·b2 + i: undo Π with a transpose
        return self._permuted_matrix(w1, w2, t.select).transpose(1, 2).reshape(t.m, t.n)

    def _unpermute(self, t, x: torch.Tensor) -> torch.Tensor:
        """Πᵀ on the last axis (the adjoint multiply has no strided output)."""
        b1 = t.w1.shape[0]
        return x.unflatten(-1, (b1, t.n // b1)).transpose(-1, -2).reshape(*x.shape[:-1], t.n)

    def apply(self, t, x: torch.Tensor) -> torch.Tensor:
        w1, w2 = self.factors(t)
        y = monarch_multiply(x, w1, w2, input_transposed=True)  # Π folded into the read strides
        y = y if t.select_is_identity else y.index_select(-1, t.select)
        return y if t.scale == 1.0 else y * t.scale

    def apply_adjoint(self, t, y: torch.Tensor) -> torch.Tensor:
        w1, w2 = self.factors(t)
        if not t.select_is_identity:
            y = y.new_zeros(*y.shape[:-1], w2.shape[0] * w2.shape[1]).index_copy(-1, t.select, y)
        x = self._unpermute(t, monarch_multiply_adjoint(y, w1, w2))
        return x if t.scale == 1.0 else x * t.scale

    def load_resampled(self, new, old, resampled: torch.Tensor) -> float:
        """Frobenius-optimal projection onto the kept-row layout at new.n (monarch_core.project_to_layout).

        The compact outputs that are not kept rows (other frequencies of a kept second-factor row) are
        free; they are filled with the exact DFT rows at new.n, so a resampled DFT projects with zero
        residual. Each rank-one pair is then rebalanced so that w1's row and w2's column have the
        same mean squared modulus (the parametrisation rule: unit-modulus entries at the DFT).
        """
        w1, w2 = (f.detach().to(torch.complex128) for f in self.factors(new))
        b1, b2 = w1.shape[0], w1.shape[1]
        compact = torch.arange(w2.shape[0] * w2.shape[1], device=w1.device)
        target = self._permuted_matrix(w1, w2, compact).reshape(compact.numel(), new.n)
        wanted = resampled.to(torch.complex128).unflatten(-1, (b2, b1)).transpose(-1, -2).reshape(new.m, new.n)
        target[new.select] = wanted
        p1, p2 = project_to_layout(target, w1.shape, w2.shape)
        nv, nu = p1.abs().square().mean(-1).transpose(0, 1), p2.abs().square().mean(1)  # [c, j]
        g = torch.where((nv > 0) & (nu > 0), nv / nu.clamp_min(1e-300), torch.ones_like(nv)) ** 0.25
        p2 = p2 * g[:, None, :]  # g[c, j] for the pair (w1[j, c, :], w2[c, :, j])
        p1 = p1 / g.transpose(0, 1)[:, :, None]
        with torch.no_grad():
            new.w1.copy_(torch.view_as_real(p1.to(new.dtype)))
            new.w2.copy_(torch.view_as_real(p2.to(new.dtype)))
        got = self._permuted_matrix(p1, p2, new.select).reshape(new.m, new.n)
        return float((got - wanted).norm() / wanted.norm().clamp_min(1e-300))

    def parameter_count(self, n: int, rows=None, sizes=None) -> int:
        return self._cost(n, rows, sizes)["params"]

    def flops(self, n: int, rows=None, sizes=None) -> int:
        return self._cost(n, rows, sizes)["flops"]

    def _cost(self, n: int, rows, sizes) -> dict:
        b1, b2, kept_t, _ = self.layout(n, rows, sizes)
        return monarch_cost((b1, b2, b2), (b2, len(kept_t), b1), complex_valued=True)


@register
class DiagKind(TransformKind):
    """The fixed FFT's kept rows times a learnable complex gain per row, stored as `gain` (m, 2), init 1."""

    name = "diag"

    def build(self, t) -> None:
        t.gain = nn.Parameter(torch.view_as_real(torch.ones(t.m, dtype=t.dtype)).clone())

    def matrix(self, t) -> torch.Tensor:
        return torch.view_as_complex(t.gain)[:, None] * super().matrix(t)

    def apply(self, t, x: torch.Tensor) -> torch.Tensor:
        return fixed_rows(t, x) * torch.view_as_complex(t.gain)

    def apply_adjoint(self, t, y: torch.Tensor) -> torch.Tensor:
        return fixed_rows_adjoint(t, y * torch.view_as_complex(t.gain).conj())

    def factors(self, t) -> tuple:
        return (torch.view_as_complex(t.gain),)

    def load_resampled(self, new, old, resampled: torch.Tensor) -> float:
        with torch.no_grad():
            new.gain.copy_(old.gain.detach())  # the gain belongs to the frequency, not to the grid
        return 0.0

    def parameter_count(self, n: int, rows=None, sizes=None) -> int:
        return 2 * len(_as_rows(rows, n))

    def flops(self, n: int, rows=None, sizes=None) -> int:
        return super().flops(n) + 6 * len(_as_rows(rows, n))


TRANSFORM_KINDS = tuple(_REGISTRY)
