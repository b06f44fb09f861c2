"""What the Triton kernels support, and the fp32 dot precision they use (imports no Triton).

Supported: float32, bfloat16, float16, and complex64 (carried as float32 real/imaginary planes), on
CUDA tensors — or on CPU tensors when TRITON_INTERPRET=1 (Triton's interpreter, for tests). Any
factor layout (non-square blocks, rectangular factors, any n) and any batch size is supported.

fp32 precision (also used for the planes of complex64), environment variable MONARCH_FP32_PRECISION
or the `precision=` argument of the kernel entry points:
    "tf32x3"  three TF32 tensor-core products, ≈ fp32 accuracy (≈1e-6 relative on a DFT; the GPU check
              `run.py bench gpu` measures it), several times faster than "ieee": the default on CUDA
    "ieee"    exact fp32 FMAs without tensor cores: on request (and what the CPU interpreter computes)
    "tf32"    one TF32 product (10-bit mantissa, ~1e-3 relative error): the fast mode, asked for explicitly
16-bit dtypes always multiply in their own format and accumulate in fp32.
"""
from __future__ import annotations

import os

import torch

PRECISION_ENV = "MONARCH_FP32_PRECISION"
FP32_PRECISIONS = ("ieee", "tf32x3", "tf32")
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16, torch.complex64)


def interpreting() -> bool:
    """True when Triton runs kernels on the CPU interpreter (TRITON_INTERPRET=1, read at Triton import)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def gpu_sm_count(device: torch.device) -> int | None:
    """Streaming multiprocessors of the CUDA device a launch compiles for; None when the kernels run on the
    CPU interpreter (or the device is not CUDA). The launchers pick GPU tiles, grids and program counts
    from it (the one seam tests/monarch_core/test_compile_count.py replaces to emulate an H200)."""
    if interpreting() or device.type != "cuda":
        return None
    return torch.cuda.get_device_properties(device).multi_processor_count


DEFAULT_FP32_PRECISION = "tf32x3"


def resolve_precision(precision: str | None, dtype: torch.dtype) -> str:
    """The `input_precision` handed to tl.dot for this dtype (argument, else MONARCH_FP32_PRECISION, else tf32x3)."""
    choice = precision if precision is not None else os.environ.get(PRECISION_ENV, DEFAULT_FP32_PRECISION)
    if choice not in FP32_PRECISIONS:
        raise ValueError(f"fp32 precision must be one of {FP32_PRECISIONS} (or set {PRECISION_ENV}), got {choice!r}")
    if dtype in (torch.float32, torch.complex64):
        return choice
    return "tf32"  # ignored for 16-bit operands; Triton's default on NVIDIA


def unsupported_reason(x: torch.Tensor, w1: torch.Tensor, w2: torch.Tensor) -> str | None:
    """Why the Triton kernels cannot take this call (None when they can). Shapes are checked by the caller."""
    from ..backend import triton_available

    if not triton_available():
        return "Triton is not importable"
    if x.dtype not in SUPPORTED_DTYPES:
        names = ", ".join(str(d).replace("torch.", "") for d in SUPPORTED_DTYPES)
        return f"dtype {str(x.dtype).replace('torch.', '')} is not supported by the Triton kernels (supported: {names})"
    if not (x.is_cuda or interpreting()):
        return f"the Triton kernels need CUDA tensors (got {x.device}; TRITON_INTERPRET=1 runs them on CPU for testing)"
    if x.numel() == 0 or w1.numel() == 0 or w2.numel() == 0:
        return "empty tensors"
    return None
