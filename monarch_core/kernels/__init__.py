"""Triton kernels for the Monarch multiply (forward and backward; float32, bfloat16, float16, complex64).

    monarch_multiply_triton(x, w1, w2, precision=None, input_transposed=False) -> y
    monarch_multiply_adjoint_triton(y, w1, w2, precision=None) -> Mᴴ y
    monarch_multiply_planar(xr, xi, w1r, w1i, w2r, w2i, precision=None, input_transposed=False) -> (yr, yi)
    monarch_multiply_two_pass(x, w1, w2, precision=None, input_transposed=False) -> y   (never one-pass)
    unsupported_reason(x, w1, w2) -> str | None
    one_pass.monarch_multiply_one_pass(x, w1, w2, precision=None, input_transposed=False) -> y
    one_pass.one_pass_applies(n, b1, b2, dtype) -> bool   (layout_applies(w1_shape, w2_shape, dtype) for any layout)

`monarch_core.monarch_multiply` dispatches here for CUDA tensors (see monarch_core.backend).
`monarch_multiply_triton` runs the one-pass forward (one_pass.py: x read once, y written once, z in an
L2-resident per-program scratch, 64-row block-diagonal 2-D dots with the batch as N, wgmma on Hopper)
for real dtypes with blocks ≤ 64 and n ≤ 4096 (MONARCH_ONE_PASS=0 turns it off), falling back to the
two-pass kernels with a one-time warning if it fails; its backward runs on the two-pass kernels.
Complex64, the planar path and the adjoint always use the two-pass kernels described next.

Two-pass design (the general path). Each pass is a block-diagonal GEMM whose tiles are 2-D
(or small batched 3-D) tl.dot products; the permutation between the factors and the output
permutation are strides of pass 2's loads and stores, so no permutation is copied. The one
intermediate z (batch × k·q, input dtype) crosses memory once each way. Why not one fused pass:
pass 2 needs, for every output block, one value from *every* pass-1 block, so a fused program must
hold a whole row tile of z (BLOCK_B × n) on chip; at n = 4096 that is 512 KiB for 64 bf16 rows,
beyond a Hopper SM (228 KiB of shared memory), and shrinking BLOCK_B below 64 loses the wgmma tiles
(the 3-D-dot fused design is the one known to run out of shared memory at block 64). The two-pass
design moves 2× the minimal bytes (x, z, z, y instead of x, y), against 4× for the PyTorch path.

Module map: support.py (supported dtypes/devices, fp32 precision modes), block_gemm.py (the two
@triton.jit kernels, autotune configs, launchers), one_pass.py (the one-pass forward kernel, its tiles,
launcher and autograd Function), monarch_triton.py (the Monarch passes, the autograd Functions, the
dispatch between one- and two-pass, and the entry points above).
"""
from .support import FP32_PRECISIONS, PRECISION_ENV, SUPPORTED_DTYPES, unsupported_reason

_LAZY = ("monarch_multiply_adjoint_triton", "monarch_multiply_planar", "monarch_multiply_triton",
         "monarch_multiply_two_pass")


def __getattr__(name):
    # Triton is imported on first use only, so that the dispatch check (support.py) works without it.
    if name in _LAZY:
        from . import monarch_triton

        return getattr(monarch_triton, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["FP32_PRECISIONS", "PRECISION_ENV", "SUPPORTED_DTYPES", *_LAZY, "unsupported_reason"]
