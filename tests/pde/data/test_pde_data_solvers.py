"""Burgers (mean conservation, Cole–Hopf exact solution) and Darcy (discrete Poisson via the sine
transform, the sparse matrix against a dense loop)."""
import math

import numpy as np
import pytest
import torch

from pde.data.burgers import burgers_1d
from pde.data.darcy import darcy_2d, darcy_matrix, threshold_coefficient
from pde.data.grf import PeriodicGRF, sample_generators


def test_burgers_conserves_the_mean():
    u0 = PeriodicGRF(1, 128, 2.0, 5.0, 25.0).sample(sample_generators(0, 0, 4), dtype=torch.float64)
    u0 = u0 + torch.tensor([0.0, 0.3, -0.5, 1.0], dtype=torch.float64)[:, None]
    u1 = burgers_1d(u0, 0.1, 1.0, 2e-3)
    assert torch.allclose(u1.mean(1), u0.mean(1), atol=1e-12)
    assert (u1 - u0).abs().max() > 0.1


def test_burgers_matches_cole_hopf():
    """u = −2ν ∂x log φ with φ solving the heat equation from φ0 = exp(−∫u0 / 2ν); u0 = A sin(2πx)."""
    size, visc, amp, t_final = 256, 0.05, 1.0, 0.5
    x = torch.arange(size, dtype=torch.float64) / size
    u0 = amp * torch.sin(2 * math.pi * x)
    phi0 = torch.exp(amp * torch.cos(2 * math.pi * x) / (2 * math.pi * 2 * visc))
    k = torch.fft.fftfreq(size, 1.0 / size, dtype=torch.float64)
    phi_h = torch.fft.fft(phi0) * torch.exp(-visc * (2 * math.pi * k) ** 2 * t_final)
    exact = -2 * visc * torch.fft.ifft(2j * math.pi * k * phi_h).real / torch.fft.ifft(phi_h).real
    u = burgers_1d(u0[None], visc, t_final, 1e-3)[0]
    assert (u - exact).abs().max() < 1e-8 * exact.abs().max() + 1e-10, (u - exact).abs().max()


def _dense_reference(coeff):
    """The same flux-form stencil assembled entry by entry into a dense matrix."""
    s = coeff.shape[0]
    n, h2 = s - 2, (s - 1) ** -2
    a = np.zeros((n * n, n * n))
    for i in range(1, s - 1):
        for j in range(1, s - 1):
            row = (i - 1) * n + (j - 1)
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                edge = (coeff[i, j] + coeff[i + di, j + dj]) / 2 / h2
                a[row, row] += edge
                ii, jj = i + di, j + dj
                if 1 <= ii <= s - 2 and 1 <= jj <= s - 2:
                    a[row, (ii - 1) * n + (jj - 1)] -= edge
    return a


def test_darcy_matrix_matches_dense_assembly():
    rng = np.random.default_rng(0)
    coeff = rng.uniform(1, 5, (7, 7))
    sparse = darcy_matrix(coeff).toarray()
    assert np.allclose(sparse, _dense_reference(coeff))
    assert np.allclose(sparse, sparse.T)


@pytest.mark.parametrize("size,value", [(17, 1.0), (24, 12.0)])
def test_darcy_constant_coefficient_is_the_discrete_poisson_solution(size, value):
    """For a = c the system is c·(5-point Laplacian); its solution follows from the type-I sine
    transform, which diagonalises the Dirichlet Laplacian: λ_pq = (4/h²)(sin²(pπh/2) + sin²(qπh/2))."""
    from scipy.fft import dstn, idstn

    h = 1.0 / (size - 1)
    n = size - 2
    rng = np.random.default_rng(1)
    f = rng.normal(size=(size, size))
    p = np.arange(1, n + 1)
    lam = 4 / h**2 * (np.sin(p[:, None] * np.pi * h / 2) ** 2 + np.sin(p[None, :] * np.pi * h / 2) ** 2)
    exact = idstn(dstn(f[1:-1, 1:-1], type=1) / (value * lam), type=1)
    u = darcy_2d(np.full((size, size), value), f)
    assert np.allclose(u[1:-1, 1:-1], exact, rtol=1e-10, atol=1e-14)
    assert np.all(u[0] == 0) and np.all(u[-1] == 0) and np.all(u[:, 0] == 0) and np.all(u[:, -1] == 0)


def test_darcy_piecewise_coefficient_solution_is_positive():
    """The 5-point matrix is an M-matrix, so f = 1 > 0 gives u > 0 at every interior node."""
    rng = np.random.default_rng(2)
    coeff = threshold_coefficient(rng.normal(size=(21, 21)))
    assert set(np.unique(coeff)) == {3.0, 12.0}
    u = darcy_2d(coeff)
    assert np.all(u[1:-1, 1:-1] > 0)
    assert u.max() < darcy_2d(np.full_like(coeff, 3.0)).max()


def test_darcy_rejects_nonpositive_coefficient():
    with pytest.raises(ValueError, match="positive"):
        darcy_2d(np.zeros((5, 5)))
