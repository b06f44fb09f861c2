"""Self-check before trust: a Triton kernel configuration is verified on its first use in a process.

`monarch_multiply` and `monarch_multiply_adjoint` route their Triton calls through `trusted`. The first
call of each configuration (entry point, device, dtype, factor shapes, fp32 precision, input order,
one-pass switch, batch bucket of the autotuner, which inputs need gradients) compares the first SLICE_ROWS rows of the kernels'
output with the PyTorch path computed in float64 (complex128) on the same rows; when the call needs
gradients it also runs forward + backward of that slice on both paths and compares every gradient the
call needs. A relative error (Frobenius norm) above TOLERANCE disables the configuration for the rest
of the process with one warning, and that call and every later one of the configuration run on the
PyTorch path: a user's results never depend on an unverified kernel.

A slice whose reference is all zero or not finite says nothing about the kernels: the configuration
stays unverified and the next call checks again. Calling the kernel entry points
(`monarch_core.kernels.monarch_multiply_triton`, ...) directly skips the check (tests see kernel bugs).
The check runs outside autocast and synchronises the device once per configuration (it reads the error
back): warm a configuration up before capturing it in a CUDA graph.
"""
from __future__ import annotations

import contextlib
import os

import torch

from .backend import warn_once

SLICE_ROWS = 16  # a multiple of 16: the gradient probe specialises the JIT like most batches do
#: relative error (norm) allowed against the float64 PyTorch path on the same (rounded) inputs; far above
#: the kernels' rounding (fp32 ≈ 1e-6, tf32 ≈ 1e-3, fp16 ≈ 1e-3, bf16 ≈ 4e-3 for unit-scale data) and far
#: below what a wrong kernel gives (O(1))
TOLERANCE = {"fp32": 1e-4, "tf32": 2e-2, torch.float16: 2e-2, torch.bfloat16: 6e-2}

_state: dict[tuple, str] = {}  # configuration key → "verified" | "disabled"


def reset() -> None:
    """Forget every verdict (tests; a process normally keeps them for its lifetime)."""
    _state.clear()


def _tolerance(dtype: torch.dtype, precision: str | None) -> float:
    if dtype in (torch.float16, torch.bfloat16):
        return TOLERANCE[dtype]
    from .kernels.support import resolve_precision

    return TOLERANCE["tf32" if resolve_precision(precision, dtype) == "tf32" else "fp32"]


def config_key(what: str, x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor, precision: str | None,
               transposed: bool) -> tuple:
    """What identifies one kernel configuration (the compiled tiles follow from these)."""
    from .kernels.support import resolve_precision

    batch = x.numel() // max(x.shape[-1], 1)
    bucket = 0 if batch <= 256 else (1 if batch <= 8192 else 2)  # block_gemm._batch_bucket (autotune key)
    return (what, str(x.device), x.dtype, tuple(w1.shape), tuple(w2.shape), resolve_precision(precision, x.dtype),
            bool(transposed), os.environ.get("MONARCH_ONE_PASS", "1"), bucket)


def _wide(t: torch.Tensor) -> torch.Tensor:
    return t.detach().to(torch.complex128 if t.is_complex() else torch.float64)


def _relative_error(got: torch.Tensor, want: torch.Tensor) -> float | None:
    """‖got − want‖ / ‖want‖, or None when want is all zero or not finite (an uninformative slice)."""
    want = _wide(want)
    scale = torch.linalg.vector_norm(want).item()
    if not (scale > 0 and torch.isfinite(want).all()):
        return None
    error = torch.linalg.vector_norm(_wide(got) - want).item() / scale
    return error if error == error else float("inf")  # NaN from the kernels is a mismatch


def _no_autocast(device: torch.device):
    """The comparison must see the kernels' own dtypes, not autocast's casts."""
    if device.type in ("cuda", "cpu"):
        return torch.autocast(device.type, enabled=False)
    return contextlib.nullcontext()


def _errors(kernel, reference, inputs, needs_grad) -> dict[str, float | None]:
    """Relative errors of output and the needed gradients of kernel(*inputs) against reference in float64."""
    leaves = [t.detach().clone().requires_grad_(need) for t, need in zip(inputs, needs_grad)]
    wide = [_wide(t).requires_grad_(need) for t, need in zip(inputs, needs_grad)]
    with torch.enable_grad():
        got, want = kernel(*leaves), reference(*wide)
        errors = {"output": _relative_error(got, want)}
        wanted = [i for i, need in enumerate(needs_grad) if need]
        if wanted:
            gen = torch.Generator().manual_seed(0)
            g = torch.randn(want.shape, dtype=want.dtype, generator=gen).to(want.device)
            got_grads = torch.autograd.grad(got, [leaves[i] for i in wanted], g.to(got.dtype))
            want_grads = torch.autograd.grad(want, [wide[i] for i in wanted], g)
            for i, a, b in zip(wanted, got_grads, want_grads):
                errors[f"grad of input {i}"] = _relative_error(a, b)
    return errors


def trusted(what: str, kernel, reference, inputs: tuple, precision: str | None = None,
            transposed: bool = False) -> torch.Tensor:
    """kernel(*inputs) (the Triton path) once its configuration is verified, else reference(*inputs).

    inputs: (x (..., n), w1, w2); kernel and reference take them in that order and return y (..., m), the
    reference being the PyTorch path (run in float64 on the slice, in the input dtype for a fallback).
    """
    x, w1, w2 = inputs
    needs_grad = [torch.is_grad_enabled() and t.requires_grad for t in inputs]
    # a verified forward says nothing about the backward kernels: calls needing gradients are their own key
    key = config_key(what, x, w1, w2, precision, transposed) + (tuple(needs_grad),)
    verdict = _state.get(key)
    if verdict == "disabled":
        return reference(*inputs)
    if verdict == "verified" or x.numel() == 0:
        return kernel(*inputs)
    rows = x.reshape(-1, x.shape[-1])[:SLICE_ROWS]
    if not any(needs_grad):  # the call's own output, so the compile that produced it is the one checked
        y = kernel(*inputs)
        with torch.no_grad(), _no_autocast(x.device):
            errors = {"output": _relative_error(y.reshape(-1, y.shape[-1])[:SLICE_ROWS],
                                                reference(*map(_wide, (rows, w1, w2))))}
    else:
        y = None
        with _no_autocast(x.device):
            errors = _errors(kernel, reference, (rows, w1, w2), needs_grad)
    tolerance = _tolerance(x.dtype, precision)
    bad = {name: e for name, e in errors.items() if e is not None and not e <= tolerance}
    if bad:
        _state[key] = "disabled"
        name, error = next(iter(bad.items()))
        warn_once(f"{what}: the Triton kernels disagree with the PyTorch path for {x.dtype} factors "
                  f"{tuple(w1.shape)}, {tuple(w2.shape)} ({name}: relative error {error:.1e} > {tolerance:.0e} on "
                  f"{rows.shape[0]} rows); this configuration runs on the PyTorch path for the rest of the process")
        return reference(*inputs)
    if all(e is not None for e in errors.values()):
        _state[key] = "verified"
    return y if y is not None else kernel(*inputs)
