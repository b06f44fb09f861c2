"""Learnable Fourier transforms along one axis that start out exactly equal to the FFT.

kind = "fft"     the fixed torch.fft transform (no parameters)
kind = "dense"   a learnable n×n complex matrix, initialised to the DFT matrix
kind = "monarch" learnable Monarch factors, initialised to the exact DFT factorisation

Complex parameters are stored as real tensors (..., 2) (torch.view_as_real) so that Adam/AdamW
treat real and imaginary parts as independent reals, as the Monarch authors' code does.
"""
from __future__ import annotations

import torch
from torch import nn

from .dft import NORMS, dft_matrix, dft_monarch
from .multiply import monarch_multiply, monarch_multiply_adjoint

KINDS = ("fft", "dense", "monarch")
_SWAPPED_NORM = {"backward": "forward", "forward": "backward", "ortho": "ortho"}


def _fft_along_last(x: torch.Tensor, inverse: bool, norm: str, centered: bool) -> torch.Tensor:
    fn = torch.fft.ifft if inverse else torch.fft.fft
    if not centered:
        return fn(x, norm=norm)
    return torch.fft.fftshift(fn(torch.fft.ifftshift(x, dim=-1), norm=norm), dim=-1)


class LearnableDFT(nn.Module):
    """A (learnable) DFT / IDFT along one dimension of a complex tensor.

    Args:
        n: transform length.
        kind: "fft", "dense" or "monarch".
        inverse: the inverse transform (torch.fft.ifft) instead of the forward one.
        norm: "backward", "ortho" or "forward", as in torch.fft.
        centered: fftshift ∘ F ∘ ifftshift (the MRI convention) instead of F.
        sizes: (b1, b2) of the Monarch factorisation (default: closest to √n); "monarch" only.
        dtype: complex64 or complex128 parameters.

    forward(x, dim=-1): x (..., n, ...) complex (real input is promoted) → same shape, complex.
    adjoint(x, dim=-1): the conjugate transpose of the current matrix applied along `dim`.
    """

    def __init__(self, n: int, kind: str = "monarch", inverse: bool = False, norm: str = "backward",
                 centered: bool = False, sizes: tuple[int, int] | None = None,
                 dtype: torch.dtype = torch.complex64):
        super().__init__()
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
        if not dtype.is_complex:
            raise TypeError(f"dtype must be complex64 or complex128, got {dtype}")
        self.n, self.kind, self.inverse, self.norm, self.centered = int(n), kind, inverse, norm, centered
        self.dtype = dtype
        if kind == "dense":
            matrix = dft_matrix(self.n, inverse, norm, centered, dtype)
            self.weight = nn.Parameter(torch.view_as_real(matrix).clone())  # (n, n, 2)
        elif kind == "monarch":
            perm, w1, w2 = dft_monarch(self.n, inverse, norm, centered, dtype, sizes)
            self.register_buffer("perm", perm, persistent=False)
            self.register_buffer("inverse_perm", torch.argsort(perm), persistent=False)
            self.w1 = nn.Parameter(torch.view_as_real(w1).clone())  # (b1, b2, b2, 2)
            self.w2 = nn.Parameter(torch.view_as_real(w2).clone())  # (b2, b1, b1, 2)

    def extra_repr(self) -> str:
        return (f"n={self.n}, kind={self.kind!r}, inverse={self.inverse}, norm={self.norm!r}, "
                f"centered={self.centered}")

    def factors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Complex views (w1, w2) of the Monarch factors (kind="monarch")."""
        return torch.view_as_complex(self.w1), torch.view_as_complex(self.w2)

    def matrix(self) -> torch.Tensor:
        """The current (n, n) complex matrix T, so that forward(x) = x @ T.T along the axis."""
        if self.kind == "dense":
            return torch.view_as_complex(self.weight)
        eye = torch.eye(self.n, dtype=self.dtype, device=self._device())
        return self.forward(eye, dim=-1).T

    def parameter_count(self) -> int:
        """Number of real trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def _device(self):
        return next(iter(self.parameters())).device if self.kind != "fft" else torch.device("cpu")

    def _prepare(self, x: torch.Tensor, dim: int) -> torch.Tensor:
        if x.shape[dim] != self.n:
            raise ValueError(
                f"LearnableDFT(n={self.n}) got a tensor of shape {tuple(x.shape)} whose dim {dim} has size "
                f"{x.shape[dim]}; expected size {self.n} along that dimension"
            )
        if self.kind == "fft":
            return x.movedim(dim, -1)
        if not x.is_complex():
            x = x.to(self.dtype)
        elif x.dtype != self.dtype:
            raise TypeError(f"input is {x.dtype} but this transform holds {self.dtype} parameters; cast the input")
        return x.movedim(dim, -1)

    def forward(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        x = self._prepare(x, dim)
        if self.kind == "fft":
            y = _fft_along_last(x, self.inverse, self.norm, self.centered)
        elif self.kind == "dense":
            y = x @ torch.view_as_complex(self.weight).T
        else:
            w1, w2 = self.factors()
            y = monarch_multiply(x[..., self.perm], w1, w2)
        return y.movedim(-1, dim)

    def adjoint(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        x = self._prepare(x, dim)
        if self.kind == "fft":
            # (shift∘F∘ishift)ᴴ = shift∘Fᴴ∘ishift, and the adjoint of fft(norm) is ifft with the swapped norm
            y = _fft_along_last(x, not self.inverse, _SWAPPED_NORM[self.norm], self.centered)
        elif self.kind == "dense":
            y = x @ torch.view_as_complex(self.weight).conj()
        else:
            w1, w2 = self.factors()
            y = monarch_multiply_adjoint(x, w1, w2)[..., self.inverse_perm]
        return y.movedim(-1, dim)
