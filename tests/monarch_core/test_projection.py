import pytest
import torch

from monarch_core import monarch_to_dense, project, project_to_layout, square_layout
from tests.monarch_core.reference import monarch_dense_reference

SQUARE_SIZES = [(4, 4), (3, 5), (8, 2), (2, 8), (6, 7)]


@pytest.mark.parametrize("sizes", SQUARE_SIZES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_project_recovers_random_monarch_exactly(sizes, dtype):
    gen = torch.Generator().manual_seed(sum(sizes))
    w1_shape, w2_shape = square_layout(sizes[0] * sizes[1], sizes)
    M = monarch_dense_reference(torch.randn(w1_shape, dtype=dtype, generator=gen),
                                torch.randn(w2_shape, dtype=dtype, generator=gen))
    w1, w2 = project(M, sizes)
    assert (w1.shape, w2.shape) == (w1_shape, w2_shape)
    assert torch.allclose(monarch_to_dense(w1, w2), M, atol=1e-10)


@pytest.mark.parametrize("w1_shape,w2_shape", [((4, 6, 8), (8, 5, 3)), ((2, 3, 4), (3, 7, 2)), ((6, 4, 5), (3, 2, 8))])
def test_project_to_rectangular_layouts_is_exact(w1_shape, w2_shape):
    gen = torch.Generator().manual_seed(5)
    M = monarch_dense_reference(torch.randn(w1_shape, dtype=torch.float64, generator=gen),
                                torch.randn(w2_shape, dtype=torch.float64, generator=gen))
    w1, w2 = project_to_layout(M, w1_shape, w2_shape)
    assert torch.allclose(monarch_to_dense(w1, w2), M, atol=1e-10)


@pytest.mark.parametrize("sizes", SQUARE_SIZES)
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_projection_beats_every_perturbation(sizes, dtype):
    """Optimality: on a random dense matrix no nearby factor pair is closer (Theorem 1)."""
    gen = torch.Generator().manual_seed(7 + sum(sizes))
    n = sizes[0] * sizes[1]
    A = torch.randn(n, n, dtype=dtype, generator=gen)
    w1, w2 = project(A, sizes)
    best = torch.linalg.norm(monarch_to_dense(w1, w2) - A)
    for scale in (1e-1, 1e-2, 1e-4):
        for _ in range(20):
            d1 = scale * torch.randn(w1.shape, dtype=dtype, generator=gen)
            d2 = scale * torch.randn(w2.shape, dtype=dtype, generator=gen)
            assert torch.linalg.norm(monarch_to_dense(w1 + d1, w2 + d2) - A) >= best - 1e-10
    # and it is much closer than a random Monarch matrix of the same scale
    assert best < torch.linalg.norm(A)


def test_projection_errors():
    with pytest.raises(ValueError, match="square"):
        project(torch.randn(4, 6))
    with pytest.raises(ValueError, match="no Monarch factorisation"):
        project(torch.randn(7, 7))
    with pytest.raises(ValueError, match="NaN"):
        project(torch.full((4, 4), float("nan")))
    with pytest.raises(ValueError, match=r"\(40, 32\) matrix"):
        project_to_layout(torch.randn(20, 30), (4, 6, 8), (8, 5, 3))
