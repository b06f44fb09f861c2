"""Learnable DFTs that compute only the kept frequencies: the transforms inside a Monarch-NO layer.

An FNO layer keeps a few Fourier modes per axis and discards the rest, so its forward transform needs
only the kept rows of the DFT matrix (an m × n matrix) and its inverse only the matching columns
(n × m). `TruncatedDFT` holds a learnable m × n matrix T, initialised to the kept rows of the DFT,
and applies T (`forward`, n values → m coefficients) or its conjugate transpose Tᴴ (`adjoint`,
m coefficients → n values). The inverse DFT restricted to the kept frequencies is exactly Tᴴ of the
unscaled forward rows, so one class serves both directions.

kind = "dense":   T is a free m × n complex matrix (2·m·n real parameters).
kind = "monarch": T = S · M · Π where M is a Monarch matrix initialised to the exact DFT factors of
                  `monarch_core.dft_monarch`, Π that function's input permutation and S the selection
                  of kept rows. Output row o = t·b2 + c of M is row t of the second factor's block c,
                  so only the second-factor rows t that hold a kept frequency are stored and computed
                  (for 24 centred modes of 64 points: 4 of 8 rows; for 12 rfft modes: 2 of 8). The
                  first factor is needed in full: every kept output reads every block of it.

`monarch_core.LearnableDFT` is the same transform untruncated (n × n); it has no way to drop rows,
which is why this module exists. Its parameters use the same real-view storage (view_as_real), and
the test suite checks both kinds against `LearnableDFT` / `torch.fft` row by row.
"""
from __future__ import annotations

import torch
from torch import nn

from monarch_core import dft_matrix, dft_monarch, monarch_multiply, monarch_multiply_adjoint

KINDS = ("dense", "monarch")


class TruncatedDFT(nn.Module):
    """Learnable rows of a length-n DFT.

    Args:
        n: transform length (points along the axis).
        frequencies: the kept frequencies (integers, negative allowed; taken modulo n), in output order.
        kind: "dense" or "monarch".
        scale: scalar the rows are multiplied by (1/n for torch.fft's norm="forward").
        sizes: (b1, b2) of the Monarch factorisation, b1·b2 = n (default: closest to √n).

    forward(x, dim): x (..., n, ...) real or complex → (..., m, ...) complex64, y = T x along `dim`.
    adjoint(y, dim): y (..., m, ...) complex → (..., n, ...) complex64, x = Tᴴ y along `dim`.
    """

    def __init__(self, n: int, frequencies, kind: str = "monarch", scale: float = 1.0,
                 sizes: tuple[int, int] | None = None):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        rows = torch.as_tensor(list(frequencies), dtype=torch.int64) % n
        if rows.numel() == 0 or rows.unique().numel() != rows.numel():
            raise ValueError(f"frequencies must be a non-empty list of distinct frequencies mod {n}, got {list(frequencies)}")
        self.n, self.kind, self.m = int(n), kind, rows.numel()
        self.register_buffer("rows", rows, persistent=False)
        if kind == "dense":
            matrix = dft_matrix(self.n, inverse=False, norm="backward", dtype=torch.complex128)[rows] * scale
            self.weight = nn.Parameter(torch.view_as_real(matrix.to(torch.complex64)).clone())  # (m, n, 2)
            return
        perm, w1, w2 = dft_monarch(self.n, inverse=False, norm="backward", dtype=torch.complex128, sizes=sizes)
        b2 = w1.shape[1]
        kept_t = torch.unique(rows // b2)  # second-factor rows holding a kept frequency
        position = {int(t): i for i, t in enumerate(kept_t)}
        select = torch.tensor([position[int(r) // b2] * b2 + int(r) % b2 for r in rows], dtype=torch.int64)
        root = abs(scale) ** 0.5
        self.register_buffer("perm", perm, persistent=False)
        self.register_buffer("inverse_perm", torch.argsort(perm), persistent=False)
        self.register_buffer("select", select, persistent=False)  # kept row i = compact output select[i]
        self.w1 = nn.Parameter(torch.view_as_real((w1 * root).to(torch.complex64)).clone())  # (b1, b2, b2, 2)
        self.w2 = nn.Parameter(torch.view_as_real((w2[:, kept_t] * (scale / root)).to(torch.complex64)).clone())
        # w2: (b2, len(kept_t), b1, 2)

    def extra_repr(self) -> str:
        shapes = (f"w1={tuple(self.w1.shape[:-1])}, w2={tuple(self.w2.shape[:-1])}" if self.kind == "monarch"
                  else f"weight={tuple(self.weight.shape[:-1])}")
        return f"n={self.n}, kept={self.m}, kind={self.kind!r}, {shapes}"

    def _check(self, x: torch.Tensor, dim: int, size: int, what: str) -> torch.Tensor:
        if x.shape[dim] != size:
            raise ValueError(f"TruncatedDFT(n={self.n}, kept={self.m}).{what} expects size {size} along dim {dim}, "
                             f"got a tensor of shape {tuple(x.shape)}")
        if not x.is_complex():
            x = x.float()
        return x.to(torch.complex64).movedim(dim, -1)

    def matrix(self) -> torch.Tensor:
        """The current (m, n) complex matrix T."""
        eye = torch.eye(self.n, dtype=torch.complex64, device=self._param().device)
        return self.forward(eye, dim=-1).T

    def _param(self) -> torch.Tensor:
        return self.weight if self.kind == "dense" else self.w1

    def forward(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        x = self._check(x, dim, self.n, "forward")
        if self.kind == "dense":
            y = x @ torch.view_as_complex(self.weight).T
        else:
            w1, w2 = torch.view_as_complex(self.w1), torch.view_as_complex(self.w2)
            y = monarch_multiply(x[..., self.perm], w1, w2)[..., self.select]
        return y.movedim(-1, dim)

    def adjoint(self, y: torch.Tensor, dim: int = -1) -> torch.Tensor:
        y = self._check(y, dim, self.m, "adjoint")
        if self.kind == "dense":
            x = y @ torch.view_as_complex(self.weight).conj()
        else:
            w1, w2 = torch.view_as_complex(self.w1), torch.view_as_complex(self.w2)
            compact = y.new_zeros(*y.shape[:-1], w2.shape[0] * w2.shape[1])
            compact[..., self.select] = y
            x = monarch_multiply_adjoint(compact, w1, w2)[..., self.inverse_perm]
        return x.movedim(-1, dim)
