"""MonarchLinear: a drop-in replacement for nn.Linear with a Monarch weight matrix."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .multiply import monarch_multiply, monarch_to_dense
from .projection import project_to_layout


def monarch_linear_layout(in_features: int, out_features: int, nblocks: int):
    """Factor shapes for a (out_features × in_features) layer with `nblocks` blocks per factor.

    Both sizes are padded up to multiples of nblocks; the smaller side sets the inner width, as in the
    Monarch authors' MonarchLinear. Returns (w1_shape, w2_shape, in_padded, out_padded).
    """
    if nblocks < 1 or in_features < 1 or out_features < 1:
        raise ValueError(f"need positive sizes, got in={in_features}, out={out_features}, nblocks={nblocks}")
    in_block = math.ceil(in_features / nblocks)
    out_block = math.ceil(out_features / nblocks)
    inner = min(in_block, out_block)
    w1_shape = (nblocks, inner, in_block)
    w2_shape = (nblocks, out_block, inner)
    return w1_shape, w2_shape, in_block * nblocks, out_block * nblocks


class MonarchLinear(nn.Module):
    """y = x Mᵀ + b with M a Monarch matrix: 2 block-diagonal factors of `nblocks` blocks each.

    Args:
        in_features, out_features: any sizes (zero padding inside when not multiples of nblocks).
        nblocks: blocks per factor; the weight has about (in + out)·min(in, out)/nblocks parameters.
        bias: add a learnable bias like nn.Linear.

    forward(x): x (..., in_features) → (..., out_features).
    """

    def __init__(self, in_features: int, out_features: int, nblocks: int = 4, bias: bool = True,
                 device=None, dtype=None):
        super().__init__()
        factory = {"device": device, "dtype": dtype}
        self.in_features, self.out_features, self.nblocks = in_features, out_features, nblocks
        w1_shape, w2_shape, self.in_padded, self.out_padded = monarch_linear_layout(in_features, out_features, nblocks)
        self.w1 = nn.Parameter(torch.empty(w1_shape, **factory))
        self.w2 = nn.Parameter(torch.empty(w2_shape, **factory))
        self.bias = nn.Parameter(torch.empty(out_features, **factory)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.Linear's rule applied to each factor with its own fan-in (as the Monarch authors do)
        for w in (self.w1, self.w2):
            bound = 1.0 / math.sqrt(w.shape[-1])
            nn.init.uniform_(w, -bound, bound)
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    @classmethod
    def from_linear(cls, linear: nn.Linear, nblocks: int = 4) -> "MonarchLinear":
        """Initialise from a dense layer by Frobenius-optimal projection of its weight."""
        if not isinstance(linear, nn.Linear):
            raise TypeError(f"from_linear expects an nn.Linear, got {type(linear).__name__}")
        w = linear.weight.detach()
        layer = cls(linear.in_features, linear.out_features, nblocks, bias=linear.bias is not None,
                    device=w.device, dtype=w.dtype)
        padded = torch.zeros(layer.out_padded, layer.in_padded, dtype=w.dtype, device=w.device)
        padded[: linear.out_features, : linear.in_features] = w
        w1, w2 = project_to_layout(padded, layer.w1.shape, layer.w2.shape)
        with torch.no_grad():
            layer.w1.copy_(w1)
            layer.w2.copy_(w2)
            if linear.bias is not None:
                layer.bias.copy_(linear.bias.detach())
        return layer

    def dense_weight(self) -> torch.Tensor:
        """The equivalent nn.Linear weight, shape (out_features, in_features)."""
        return monarch_to_dense(self.w1, self.w2)[: self.out_features, : self.in_features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"MonarchLinear expects input (..., {self.in_features}), got {tuple(x.shape)}")
        if self.in_padded != self.in_features:
            x = F.pad(x, (0, self.in_padded - self.in_features))
        y = monarch_multiply(x, self.w1, self.w2)
        if self.out_padded != self.out_features:
            y = y[..., : self.out_features]
        return y if self.bias is None else y + self.bias

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, nblocks={self.nblocks}, "
                f"bias={self.bias is not None}")
