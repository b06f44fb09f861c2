"""Monarch matrices: multiply, projection, exact DFT factors, learnable transforms, linear layers.

A Monarch matrix is M = P2 · blockdiag(w2) · P · blockdiag(w1) (two block-diagonal factors with a
fixed permutation between them; Dao et al., ICML 2022). This package is math only and imports nothing
of the applications built on it (`pde`, `mri`).

Public API:
    monarch_multiply(x, w1, w2, backend=None, precision=None, input_transposed=False)
                                                y = M x along the last axis (PyTorch or Triton; one-pass
                                                Triton kernel for real dtypes up to n = 4096);
                                                input_transposed folds the DFT's input permutation into strides
    monarch_multiply_adjoint(y, w1, w2, backend=None, precision=None)   Mᴴ y
    monarch_to_dense(w1, w2)                    the dense matrix M
    project(A, sizes=None)                      Frobenius-optimal Monarch factors of a square A
    project_to_layout(A, w1_shape, w2_shape)    ... of any (rectangular) layout
    dft_monarch(n, inverse, norm, centered, dtype, sizes)  exact (perm, w1, w2) of the (I)DFT
    dft_matrix(n, inverse, norm, centered, dtype)          the dense (I)DFT matrix
    LearnableDFT(n, kind, inverse, norm, centered, sizes, dtype, rows, scale)
                                                kept rows of a fixed or learnable (I)DFT; .resized(n_new)
    TRANSFORM_KINDS, transform_kind(name)       the registry of kinds: fft | dense | monarch | diag
    dft_rows, resample_rows, signed_frequencies  unscaled DFT rows; band-limited row resampling
    MonarchLinear(in_features, out_features, nblocks=4)    drop-in for nn.Linear
    factor_pair(n, sizes=None)                  (b1, b2) with b1·b2 = n (ValueError when none)
    transform_cost(kind, n, sizes=None, rows=None), monarch_cost(w1_shape, w2_shape), count_parameters(module)
"""
from .backend import BACKEND_ENV, resolve_backend
from .cost import count_parameters, monarch_cost, transform_cost
from .dft import dft_matrix, dft_monarch, dft_rows, resample_rows, signed_frequencies
from .factors import factor_pair, square_layout
from .learnable_dft import LearnableDFT
from .linear import MonarchLinear
from .matrix_reuse import reused_matrices
from .multiply import monarch_multiply, monarch_multiply_adjoint, monarch_multiply_torch, monarch_to_dense
from .projection import project, project_to_layout
from .transform_kinds import TRANSFORM_KINDS, TransformKind, transform_kind

__all__ = [
    "BACKEND_ENV", "LearnableDFT", "TRANSFORM_KINDS", "TransformKind", "dft_rows", "resample_rows", "reused_matrices",
    "signed_frequencies", "transform_kind", "MonarchLinear", "count_parameters", "dft_matrix", "dft_monarch",
    "factor_pair", "monarch_cost", "monarch_multiply", "monarch_multiply_adjoint", "monarch_multiply_torch",
    "monarch_to_dense", "project", "project_to_layout", "resolve_backend", "square_layout", "transform_cost",
]
