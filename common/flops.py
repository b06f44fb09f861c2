"""Floating-point operations of one forward pass (`forward_flops`), for the reports' cost column.

torch.utils.flop_counter counts matmul-like operations (mm, bmm, conv, attention: 2 per multiply-add)
and nothing else; on its own it would count an FFT as free, which flatters exactly the baseline the
learnable transforms are compared with. The FFT operators are therefore counted too, with the usual
radix-2 estimate: 5·N·log2 N real operations per complex transform of length N (2.5·N·log2 N for a
real-input or real-output one). Known undercount, the same for every method: a complex matmul is
counted like a real one (a complex multiply-add is 4 real multiplies and 4 adds), and elementwise
operations are not counted.
"""
from __future__ import annotations

import math


def _transform_flops(shape, dims, per_point: float) -> int:
    n = math.prod(shape[d] for d in dims)
    batch = math.prod(shape) // max(1, n)
    return int(batch * per_point * n * math.log2(max(n, 2)))


def _r2c(self_shape, dim, *args, **kwargs):
    return _transform_flops(self_shape, dim, 2.5)


def _c2c(self_shape, dim, *args, **kwargs):
    return _transform_flops(self_shape, dim, 5.0)


def _c2r(self_shape, dim, normalization, last_dim_size, *args, **kwargs):
    shape = list(self_shape)
    shape[dim[-1]] = last_dim_size  # the real output's length along the last transformed axis
    return _transform_flops(shape, dim, 2.5)


def forward_flops(module, *inputs) -> int:
    """FLOPs of `module(*inputs)` (no gradient), counted as the module docstring says."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    aten = torch.ops.aten
    mapping = {aten._fft_r2c: _r2c, aten._fft_c2c: _c2c, aten._fft_c2r: _c2r}
    with torch.no_grad(), FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        module(*inputs)
    return int(counter.get_total_flops())


__all__ = ["forward_flops"]
