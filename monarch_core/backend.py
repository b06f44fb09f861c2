"""Choice between the PyTorch path and the Triton kernels for the Monarch multiply.

`backend=None` reads the MONARCH_BACKEND environment variable ("auto" when unset); "auto" uses the
Triton kernels for CUDA tensors when Triton is importable and the PyTorch path otherwise.

A call the kernels fail on (compile error, out of resources, launch failure) is re-run on the PyTorch
path with a one-time warning per reason (`with_fallback`); inside the Triton path a failing one-pass
kernel (kernels/one_pass.py) is re-run on the two-pass kernels the same way.

The first call of each kernel configuration is checked against the PyTorch path on a small slice
(`monarch_core.self_check`); a mismatch disables that configuration with one warning.

A call the kernels cannot take (a dtype other than float32/bfloat16/float16/complex64, a CPU tensor
outside TRITON_INTERPRET=1, no Triton) runs on the PyTorch path with a warning given once per
reason — also when "triton" was asked for explicitly: the kernels are an accelerator of the same
product, so an unsupported case is answered correctly and slower rather than refused. Call
`monarch_core.kernels.monarch_multiply_triton` directly to get an error instead.
"""
from __future__ import annotations

import functools
import os
import warnings

import torch

BACKEND_ENV = "MONARCH_BACKEND"
BACKENDS = ("auto", "torch", "triton")

_warned: set[str] = set()


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except Exception:  # a broken Triton install must never break the PyTorch path
        return False
    return True


def warn_once(message: str) -> None:
    """warnings.warn the message the first time it is seen in this process."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=4)  # point at the caller of monarch_multiply


def with_fallback(fast, slow, what: str, to: str = "the PyTorch path"):
    """fast(), or slow() with a loud one-time warning (per failure reason) when fast() fails to compile or
    launch; `to` names what slow() runs on. Argument errors (ValueError, TypeError) propagate; under
    TRITON_INTERPRET=1 nothing is caught, so tests see kernel bugs instead of a silent fallback."""
    from .kernels.support import interpreting

    try:
        return fast()
    except (ValueError, TypeError):
        raise
    except Exception as error:  # Triton CompilationError, OutOfResources, launch errors, ...
        if interpreting():
            raise
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        warn_once(f"{what}: the Triton kernels failed ({type(error).__name__}: {reason}); this call ran on "
                  f"{to} (choosing it for such calls from now on is up to you, e.g. backend='torch')")
        return slow()


def resolve_backend(backend: str | None, x: torch.Tensor, w1: torch.Tensor | None = None,
                    w2: torch.Tensor | None = None) -> str:
    """Return "torch" or "triton" for this call (factors optional; given, they are checked too)."""
    choice = backend if backend is not None else os.environ.get(BACKEND_ENV, "auto")
    if choice not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS} (or set {BACKEND_ENV}), got {choice!r}")
    if choice == "auto":
        choice = "triton" if x.is_cuda and triton_available() else "torch"
    if choice == "triton":
        from .kernels.support import unsupported_reason  # imports no Triton

        reason = unsupported_reason(x, x if w1 is None else w1, x if w2 is None else w2)
        if reason is not None:
            warn_once(f"monarch_multiply: using the PyTorch path because {reason}")
            return "torch"
    return choice
