"""Gaussian random fields used as initial conditions and coefficients of the PDE benchmarks.

Two families, both as in the FNO data generators:

* `PeriodicGRF` — a field on the unit torus [0, 1)^d with covariance σ² (−Δ + τ² I)^(−α), sampled
  spectrally (FFT). Navier–Stokes initial vorticity (α = 2.5, τ = 7) and Burgers initial data
  (α = 2, τ = 5, σ = 25) use it.
* `NeumannGRF` — the cosine-series field of the original MATLAB ``GRF.m`` (Darcy coefficients before
  thresholding, α = 2, τ = 3), sampled with an orthonormal inverse DCT.

Randomness is drawn on the CPU from one `torch.Generator` per sample, seeded by ``sample_seed(seed,
index)``: the same (seed, index) gives the same field whatever the batch size or device, which is what
makes generation resumable and files reproducible.
"""
import math

import numpy as np
import torch


def sample_seed(seed: int, index: int) -> int:
    """A 63-bit seed for sample `index` of a run seeded with `seed` (independent streams per sample)."""
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1, np.uint64)[0] >> 1)


def sample_generators(seed: int, start: int, count: int):
    """CPU generators for samples start .. start+count-1 of a run seeded with `seed`."""
    return [torch.Generator().manual_seed(sample_seed(seed, i)) for i in range(start, start + count)]


def wavenumbers(size: int, device=None) -> torch.Tensor:
    """Integer FFT wavenumbers 0, 1, …, size/2−1, −size/2, …, −1 (the FFT's ordering), shape (size,)."""
    return torch.fft.fftfreq(size, d=1.0 / size, device=device).round().to(torch.float64)


class PeriodicGRF:
    """Gaussian random field N(0, σ² (−Δ + τ² I)^(−α)) on the unit torus, with zero mean mode.

    Args:
        dim: 1 or 2 spatial dimensions.
        size: grid points per dimension (grid ``linspace(0, 1, size+1)[:-1]``).
        alpha, tau: smoothness and inverse length scale.
        sigma: amplitude; default τ^(α − d/2) (the FNO code's choice, which makes the k = 0 variance
            of the un-zeroed operator τ^(−d)). Burgers uses σ = 25 explicitly.

    The FNO construction: ``sqrt_eig = size^d · √2 · σ · (4π²|k|² + τ²)^(−α/2)`` with the k = 0 entry
    zeroed; a sample is ``Re(ifftn(sqrt_eig · ξ))`` with ξ complex white noise whose real and
    imaginary parts are independent standard normals (the original ``torch.randn(..., 2)``).
    Consequence (checked by the tests): ``E|fftn(sample)_k|² = sqrt_eig_k²`` for every k.
    """

    def __init__(self, dim: int, size: int, alpha: float, tau: float, sigma: float | None = None):
        if dim not in (1, 2):
            raise ValueError(f"PeriodicGRF supports dim 1 or 2, got dim={dim}")
        if size < 2:
            raise ValueError(f"PeriodicGRF needs size >= 2, got {size}")
        self.dim, self.size, self.alpha, self.tau = dim, size, float(alpha), float(tau)
        self.sigma = float(sigma) if sigma is not None else tau ** (0.5 * (2 * alpha - dim))
        k = wavenumbers(size)
        k2 = k**2 if dim == 1 else k[:, None] ** 2 + k[None, :] ** 2
        sqrt_eig = size**dim * math.sqrt(2.0) * self.sigma * (4 * math.pi**2 * k2 + self.tau**2) ** (-self.alpha / 2)
        sqrt_eig.view(-1)[0] = 0.0
        self.sqrt_eig = sqrt_eig  # float64, shape (size,) * dim

    def sample(self, generators, device="cpu", dtype=torch.float32) -> torch.Tensor:
        """One field per generator: shape (len(generators), size[, size]) on `device`."""
        shape = (self.size,) * self.dim
        noise = torch.stack([torch.randn(*shape, 2, generator=g, dtype=torch.float64) for g in generators])
        coeff = torch.view_as_complex(noise) * self.sqrt_eig
        dims = tuple(range(-self.dim, 0))
        return torch.fft.ifftn(coeff.to(device), dim=dims).real.to(dtype)


class NeumannGRF:
    """The cosine-series random field of the FNO Darcy generator (MATLAB ``GRF.m``), 2-D.

    ``L = size · τ^(α−1) · (π²|k|² + τ²)^(−α/2) · ξ`` for k in {0..size−1}², ξ standard normal, L₀₀ = 0,
    and the field is ``idct2(L)`` (orthonormal inverse DCT-II), shape (size, size). Only its sign matters
    for the thresholded Darcy coefficient, but the scale is kept faithful.
    """

    def __init__(self, size: int, alpha: float = 2.0, tau: float = 3.0):
        self.size, self.alpha, self.tau = size, float(alpha), float(tau)
        k = np.arange(size, dtype=np.float64)
        k2 = k[:, None] ** 2 + k[None, :] ** 2
        self.coef = size * tau ** (alpha - 1) * (np.pi**2 * k2 + tau**2) ** (-alpha / 2)
        self.coef[0, 0] = 0.0

    def sample(self, generators) -> np.ndarray:
        """One field per generator: float64 array (len(generators), size, size)."""
        from scipy.fft import idctn

        xi = np.stack([torch.randn(self.size, self.size, generator=g, dtype=torch.float64).numpy()
                       for g in generators])
        return idctn(self.coef * xi, type=2, norm="ortho", axes=(-2, -1))
