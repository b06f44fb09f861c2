"""1-D viscous Burgers' equation on the periodic unit interval — the FNO Burgers benchmark.

    ∂t u + ∂x(u²/2) = ν ∂xx u,   x ∈ [0, 1) periodic,   u(·, 0) = u0 ~ N(0, 625 (−Δ + 25 I)^(−2))

The benchmark maps u0 to u(·, 1) with ν = 0.1. The original data were made with chebfun's ``spin``
(Fourier pseudo-spectral in space, ETDRK4 in time, N = 8192); this module uses the same method:
exponential time differencing RK4 (Cox–Matthews, coefficients by the contour integrals of
Kassam & Trefethen 2005) with the 2/3-rule de-aliased nonlinear term, batched with torch.fft.
Computation is in float64 (MATLAB's precision); stored arrays are float32.
"""
import math

import numpy as np
import torch

from pde.data.grf import PeriodicGRF, sample_generators


def _etdrk4_coefficients(linear: torch.Tensor, dt: float, contour_points: int = 32):
    """E, E/2, Q, f1, f2, f3 of ETDRK4 for the diagonal linear operator `linear` (real, float64)."""
    c = (dt * linear).to(torch.complex128)[..., None]
    r = c + torch.exp(2j * math.pi * (torch.arange(contour_points, dtype=torch.float64, device=linear.device)
                                      + 0.5) / contour_points)
    er = torch.exp(r)
    q = dt * ((torch.exp(r / 2) - 1) / r).mean(-1).real
    f1 = dt * ((-4 - r + er * (4 - 3 * r + r**2)) / r**3).mean(-1).real
    f2 = dt * ((2 + r + er * (r - 2)) / r**3).mean(-1).real
    f3 = dt * ((-4 - 3 * r - r**2 + er * (4 - r)) / r**3).mean(-1).real
    return torch.exp(dt * linear), torch.exp(dt * linear / 2), q, f1, f2, f3


def burgers_1d(u0: torch.Tensor, visc: float, t_final: float, dt: float) -> torch.Tensor:
    """u(·, t_final) for a batch of periodic initial conditions.

    Args:
        u0: (B, S) initial data on linspace(0, 1, S+1)[:-1], S even; computation in float64 on u0's device.
        visc: viscosity ν.
        t_final: final time.
        dt: ETDRK4 time step (shrunk so that t_final is a whole number of steps).

    Returns: (B, S) solution at t_final, float64.
    """
    if u0.ndim != 2 or u0.shape[-1] % 2:
        raise ValueError(f"u0 must be (B, S) with S even, got shape {tuple(u0.shape)}")
    size = u0.shape[-1]
    steps = max(1, math.ceil(t_final / dt - 1e-9))
    dt = t_final / steps
    k = torch.arange(size // 2 + 1, dtype=torch.float64, device=u0.device)
    linear = -visc * (2 * math.pi * k) ** 2
    e, e2, q, f1, f2, f3 = _etdrk4_coefficients(linear, dt)
    # −∂x(u²/2) in Fourier space, with the 2/3 rule on the product.
    flux_gain = (-0.5j * 2 * math.pi * k) * (k <= size / 3).to(torch.float64)

    def nonlinear(v_h):
        return flux_gain * torch.fft.rfft(torch.fft.irfft(v_h, n=size) ** 2)

    v = torch.fft.rfft(u0.to(torch.float64))
    for _ in range(steps):
        nv = nonlinear(v)
        a = e2 * v + q * nv
        na = nonlinear(a)
        b = e2 * v + q * na
        nb = nonlinear(b)
        c = e2 * a + q * (2 * nb - nv)
        nc = nonlinear(c)
        v = e * v + nv * f1 + 2 * (na + nb) * f2 + nc * f3
    return torch.fft.irfft(v, n=size)


def max_stable_dt(params: dict, seed: int, n_samples: int) -> tuple[float, str]:
    """The largest ETDRK4 step the advective CFL condition on the shock width allows, and where it comes from.

    ETDRK4 integrates the diffusion exactly, so the grid spacing sets no limit (measured: the same errors at
    256 and 1024 points); the explicit nonlinear term must not carry the flow across the smallest scale the
    solution has, the width δ = 2ν/U of the viscous shock u = −U·tanh(U·x/(2ν)). U = max|u0| over this
    run's initial conditions bounds |u| for all time (viscous Burgers obeys the maximum principle), so
    Δt·U/δ ≤ 1 gives Δt ≤ 2ν/U². Measured (8 samples, seed 0, 256 points: max|u0| ≈ 1.61, bound ≈ 0.077):
    relative L2 error against Δt = 1e-4 of 2e-4 at Δt = 0.05, 1% at 0.2, 9% at 0.5, 170% at 1 (one step).
    """
    grf = PeriodicGRF(1, params["gen_res"], alpha=params["alpha"], tau=params["tau"], sigma=params["sigma"])
    top = 0.0
    for start in range(0, n_samples, 256):
        u0 = grf.sample(sample_generators(seed, start, min(256, n_samples - start)), dtype=torch.float64)
        top = max(top, float(u0.abs().max()))
    visc = params["visc"]
    return 2 * visc / top**2, (f"advective CFL on the viscous shock width 2ν/max|u0| (ν={visc:g}, "
                               f"max|u0| ≈ {top:.3g} for this seed): Δt ≤ 2ν/max|u0|²")


def effective_dt(params: dict) -> float:
    """The step `burgers_1d` really takes (t_final divided into whole steps)."""
    return params["t_final"] / max(1, math.ceil(params["t_final"] / params["dt"] - 1e-9))


def sample_shapes(params: dict) -> dict:
    return {"a": (params["res"],), "u": (params["res"],)}


def generate_batch(params: dict, seed: int, start: int, count: int, device="cpu", progress=False) -> dict:
    """Samples start .. start+count−1 of a Burgers dataset: a = u0, u = u(·, t_final), (count, res) float32.

    params: visc, t_final, dt, gen_res, res, alpha, tau, sigma.
    """
    gen_res, res = params["gen_res"], params["res"]
    if gen_res % res:
        raise ValueError(f"stored resolution {res} must divide the generation resolution {gen_res}")
    grf = PeriodicGRF(1, gen_res, alpha=params["alpha"], tau=params["tau"], sigma=params["sigma"])
    u0 = grf.sample(sample_generators(seed, start, count), device=device, dtype=torch.float64)
    u1 = burgers_1d(u0, params["visc"], params["t_final"], params["dt"])
    stride = gen_res // res
    return {"a": u0[:, ::stride].cpu().numpy().astype(np.float32),
            "u": u1[:, ::stride].cpu().numpy().astype(np.float32)}
