"""Navier–Stokes solver: analytic solutions, an independent re-implementation of the original scheme,
batching, sub-sampling and input checks."""
import math

import pytest
import torch

from pde.data.grf import PeriodicGRF, sample_generators
from pde.data.navier_stokes import navier_stokes_2d, ns_forcing, record_schedule


def _grid(size):
    x = torch.arange(size, dtype=torch.float64) / size
    return torch.meshgrid(x, x, indexing="ij")


@pytest.mark.parametrize("k1,k2,visc", [(1, 0, 1e-2), (2, 3, 1e-3), (-3, 1, 5e-3)])
def test_single_mode_decays_exponentially(k1, k2, visc):
    """Zero forcing, one Fourier mode: u·∇w = 0, so w = w0·exp(−ν 4π²|k|² t) up to Crank–Nicolson's error."""
    x, y = _grid(32)
    w0 = torch.stack([torch.cos(2 * math.pi * (k1 * x + k2 * y)), 0.7 * torch.sin(2 * math.pi * (k1 * x + k2 * y))])
    t_final, dt, frames = 2.0, 1e-2, 4
    u, t = navier_stokes_2d(w0, None, visc, t_final, dt, frames)
    lam = visc * 4 * math.pi**2 * (k1**2 + k2**2)
    exact = w0[..., None] * torch.exp(-lam * t)
    steps = t / dt
    cn_error = steps * (lam * dt) ** 3 / 12 + 1e-12  # per-step CN amplification error ≈ (λΔt)³/12
    err = (u - exact).abs().amax(dim=(0, 1, 2))
    assert torch.all(err <= 2 * cn_error), (err, cn_error)
    assert torch.allclose(t, torch.tensor([0.5, 1.0, 1.5, 2.0], dtype=torch.float64))


def test_benchmark_forcing_drives_its_mode_to_the_analytic_solution():
    """w0 = 0 and f = 0.1(sin + cos)(2π(x+y)) (one wavevector, so u·∇w = 0): w = f/(νλ)·(1 − exp(−νλt)).
    For a constant forcing and a linear mode the update is exactly the Crank–Nicolson rule, so the
    error must shrink like Δt²."""
    size, visc, t_final = 16, 0.05, 2.0
    f = ns_forcing(size, dtype=torch.float64)
    lam = 4 * math.pi**2 * 2
    errors = []
    for dt in (1e-2, 5e-3):
        u, t = navier_stokes_2d(torch.zeros(1, size, size, dtype=torch.float64), f, visc, t_final, dt, 2)
        exact = f[..., None] / (visc * lam) * (1 - torch.exp(-visc * lam * t))
        errors.append(((u[0] - exact).norm() / exact.norm()).item())
    assert errors[0] < 1e-4 and 3.5 < errors[0] / errors[1] < 4.5, errors


def _original_scheme(w0, f, visc, t_final, dt, record_every):
    """The published generator's update written out per sample with full complex FFTs (float64)."""
    n = w0.shape[-1]
    k = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
    kx, ky = k[:, None].expand(n, n), k[None, :].expand(n, n)
    lap = 4 * math.pi**2 * (kx**2 + ky**2)
    lap_psi = lap.clone()
    lap_psi[0, 0] = 1.0
    k_max = n // 2
    dealias = ((kx.abs() <= 2 / 3 * k_max) & (ky.abs() <= 2 / 3 * k_max)).double()
    w_h, f_h = torch.fft.fft2(w0), torch.fft.fft2(f)
    frames = []
    for step in range(1, round(t_final / dt) + 1):
        psi = w_h / lap_psi
        u = torch.fft.ifft2(2j * math.pi * ky * psi).real
        v = torch.fft.ifft2(-2j * math.pi * kx * psi).real
        wx = torch.fft.ifft2(2j * math.pi * kx * w_h).real
        wy = torch.fft.ifft2(2j * math.pi * ky * w_h).real
        nl = dealias * torch.fft.fft2(u * wx + v * wy)
        w_h = (-dt * nl + dt * f_h + (1 - 0.5 * dt * visc * lap) * w_h) / (1 + 0.5 * dt * visc * lap)
        if step % record_every == 0:
            frames.append(torch.fft.ifft2(w_h).real)
    return torch.stack(frames, -1)


def test_matches_an_independent_implementation_of_the_original_scheme():
    size = 24
    w0 = PeriodicGRF(2, size, 2.5, 7.0).sample(sample_generators(0, 0, 2), dtype=torch.float64)
    # Without Nyquist content in w0 it never appears (the nonlinear term is de-aliased, the forcing has
    # none), so the two FFT layouts' different Nyquist conventions for ∂x, ∂y cannot matter.
    w_h = torch.fft.fft2(w0)
    w_h[:, size // 2, :] = 0
    w_h[:, :, size // 2] = 0
    w0 = torch.fft.ifft2(w_h).real
    f = ns_forcing(size, dtype=torch.float64)
    u, _ = navier_stokes_2d(w0, f, 1e-3, 0.6, 0.01, 3)
    for b in range(2):
        ref = _original_scheme(w0[b], f, 1e-3, 0.6, 0.01, 20)
        assert torch.allclose(u[b], ref, rtol=0, atol=1e-9 * ref.abs().max()), (u[b] - ref).abs().max()
    assert (u[..., -1] - w0).abs().max() > 1e-3  # the flow actually evolved


def test_batching_stride_and_precision():
    size = 32
    w0 = PeriodicGRF(2, size, 2.5, 7.0).sample(sample_generators(2, 0, 3), dtype=torch.float64)
    f = ns_forcing(size, dtype=torch.float64)
    full, t = navier_stokes_2d(w0, f, 1e-3, 0.5, 5e-3, 2)
    one, _ = navier_stokes_2d(w0[1:2], f, 1e-3, 0.5, 5e-3, 2)
    assert torch.allclose(full[1:2], one, atol=1e-12)
    strided, _ = navier_stokes_2d(w0, f.expand(3, size, size), 1e-3, 0.5, 5e-3, 2, record_stride=4)
    assert strided.shape == (3, 8, 8, 2) and torch.allclose(strided, full[:, ::4, ::4], atol=1e-12)
    single, t32 = navier_stokes_2d(w0.float(), f.float(), 1e-3, 0.5, 5e-3, 2)
    assert single.dtype == torch.float32 and t32.dtype == torch.float32
    assert torch.allclose(single.double(), full, atol=1e-5 * full.abs().max())


def test_record_schedule_lands_on_record_times():
    assert record_schedule(50.0, 1e-3, 50) == (1000, pytest.approx(1e-3))
    steps, dt = record_schedule(1.0, 0.3, 2)  # 0.5 / 0.3 → 2 steps of 0.25 (never a larger step)
    assert steps == 2 and dt == pytest.approx(0.25)


@pytest.mark.parametrize("shape,forcing", [((4, 4), None), ((1, 5, 5), None), ((1, 8, 6), None),
                                           ((1, 8, 8), torch.zeros(4, 4))])
def test_bad_inputs_are_rejected(shape, forcing):
    with pytest.raises(ValueError, match="must be"):
        navier_stokes_2d(torch.zeros(shape), forcing, 1e-3, 1.0, 1e-2, 1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu():
    w0 = PeriodicGRF(2, 32, 2.5, 7.0).sample(sample_generators(0, 0, 2))
    f = ns_forcing(32)
    cpu, _ = navier_stokes_2d(w0, f, 1e-3, 0.5, 1e-2, 2)
    gpu, t = navier_stokes_2d(w0.cuda(), f.cuda(), 1e-3, 0.5, 1e-2, 2)
    assert gpu.is_cuda and t.is_cuda
    assert torch.allclose(gpu.cpu(), cpu, atol=1e-5)
