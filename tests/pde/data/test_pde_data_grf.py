"""Gaussian random fields: empirical spectra against their definitions, and per-sample seeding."""
import math

import numpy as np
import pytest
import torch

from pde.data.grf import NeumannGRF, PeriodicGRF, sample_generators


def _definition(dim, size, alpha, tau, sigma):
    """E|fftn(sample)_k|² from the covariance σ²(−Δ+τ²)^(−α): size^(2d) · 2σ² (4π²|k|²+τ²)^(−α), k≠0."""
    k = np.fft.fftfreq(size, 1.0 / size)
    k2 = k**2 if dim == 1 else k[:, None] ** 2 + k[None, :] ** 2
    spec = size ** (2 * dim) * 2 * sigma**2 * (4 * np.pi**2 * k2 + tau**2) ** (-alpha)
    spec.flat[0] = 0.0
    return spec


@pytest.mark.parametrize("dim,size,alpha,tau,sigma,n", [(2, 32, 2.5, 7.0, None, 400), (1, 128, 2.0, 5.0, 25.0, 2000)])
def test_periodic_grf_spectrum_matches_definition(dim, size, alpha, tau, sigma, n):
    grf = PeriodicGRF(dim, size, alpha, tau, sigma)
    expected_sigma = sigma if sigma is not None else tau ** (alpha - dim / 2)
    samples = grf.sample(sample_generators(1, 0, n), dtype=torch.float64).numpy()
    power = np.abs(np.fft.fftn(samples, axes=tuple(range(1, dim + 1)))) ** 2
    empirical = power.mean(0)
    spec = _definition(dim, size, alpha, tau, expected_sigma)
    mask = spec > 0
    ratio = empirical[mask] / spec[mask]
    # each ratio is a mean of n scaled chi-square(2)/2 draws (mean 1, sd 1/√n, pairs ±k are shared)
    assert abs(ratio.mean() - 1) < 4 / math.sqrt(n * mask.sum() / 2)
    assert np.all(np.abs(ratio - 1) < 6 / math.sqrt(n))
    assert np.allclose(empirical.flat[0], 0, atol=1e-20 * spec.max())  # zero mean mode
    assert np.abs(samples.mean(axis=tuple(range(1, dim + 1)))).max() < 1e-12


def test_neumann_grf_cosine_coefficients_have_the_defined_variance():
    from scipy.fft import dctn

    size, alpha, tau, n = 24, 2.0, 3.0, 1500
    fields = NeumannGRF(size, alpha, tau).sample(sample_generators(3, 0, n))
    coeffs = dctn(fields, type=2, norm="ortho", axes=(-2, -1))
    k = np.arange(size)
    var = (size * tau ** (alpha - 1) * (np.pi**2 * (k[:, None] ** 2 + k[None, :] ** 2) + tau**2) ** (-alpha / 2)) ** 2
    var[0, 0] = 0
    ratio = coeffs.var(0)[var > 0] / var[var > 0]
    assert np.all(np.abs(ratio - 1) < 6 * math.sqrt(2 / n))
    assert np.abs(coeffs[:, 0, 0]).max() < 1e-10


def test_samples_depend_on_seed_and_index_only():
    grf = PeriodicGRF(2, 16, 2.5, 7.0)
    together = grf.sample(sample_generators(5, 0, 6))
    split = torch.cat([grf.sample(sample_generators(5, 0, 2)), grf.sample(sample_generators(5, 2, 4))])
    assert torch.equal(together, split)
    assert not torch.allclose(together, grf.sample(sample_generators(6, 0, 6)))
    assert not torch.allclose(together[0], together[1])
