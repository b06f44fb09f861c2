"""Build each learnable transform's matrix once per forward pass instead of once per call.

A materialised transform (dense, a Monarch transform applied as one matmul) forms its (m, n) matrix from
its parameters at every call, differentiably. A model that applies the same transform many times in one
forward pass — an unrolled MRI network (the SENSE normal operator at every step, every CG iteration), an
autoregressive FNO rollout (one call per predicted frame) — pays that build, and its backward, each time.
Inside `reused_matrices()` every transform builds its matrix at its first call and reuses the tensor for
the rest of the block: the autograd graph then holds one build node whose gradient sums over the uses,
which is the same gradient (the same function of the parameters, applied several times).

Scope is the caller's: one forward pass. Outside the block nothing is kept, so gradient accumulation
over several backward passes and optimizer steps between calls behave as without it; inside, a matrix is
rebuilt when a parameter changed in place (its version moved) or grad mode differs from the build's.
"""
from __future__ import annotations

import contextlib
import contextvars
from typing import Callable

import torch

_CACHE: contextvars.ContextVar[dict | None] = contextvars.ContextVar("monarch_reused_matrices", default=None)


@contextlib.contextmanager
def reused_matrices():
    """Within the block each transform's matrix is built once (see the module docstring). Nested blocks
    share the outermost one's matrices."""
    token = _CACHE.set({}) if _CACHE.get() is None else None
    try:
        yield
    finally:
        if token is not None:
            _CACHE.reset(token)


def reusing_matrices() -> bool:
    """Whether the caller runs inside a `reused_matrices` block."""
    return _CACHE.get() is not None


def matrix_of(module: torch.nn.Module, build: Callable[[], torch.Tensor]) -> torch.Tensor:
    """`build()` (module's current matrix), or inside `reused_matrices` the one built earlier in the block
    for the same module, grad mode and parameter versions."""
    cache = _CACHE.get()
    if cache is None:
        return build()
    key = (id(module), torch.is_grad_enabled())
    versions = tuple(p._version for p in module.parameters())
    hit = cache.get(key)
    if hit is None or hit[0] != versions:
        # the entry holds the module: alive for the whole block, its id cannot be taken by another object
        hit = cache[key] = (versions, module, build())
    return hit[2]
