"""2-D incompressible Navier–Stokes in vorticity form on the unit torus — the FNO benchmark solver.

    ∂t w + u·∇w = ν Δw + f,   u = (∂y ψ, −∂x ψ),   −Δψ = w,   w(·, 0) = w0

Same scheme as the original FNO generator (``data_generation/navier_stokes/ns_2d.py``):
pseudo-spectral with ``rfft2``; the stream function from ψ̂ = ŵ / (4π²|k|²); velocity and ∇w by
spectral differentiation; the nonlinear term u·∇w formed on the grid, transformed back and de-aliased
with the 2/3 rule; Crank–Nicolson on viscosity and forward Euler on the nonlinear term and forcing:

    ŵ ← (−Δt·N̂ + Δt·f̂ + (1 − ½Δt·ν·4π²|k|²)·ŵ) / (1 + ½Δt·ν·4π²|k|²)

One difference, on purpose: the original also applies the guard value 4π²|k|² := 1 at k = 0 in the
Crank–Nicolson factors, which damps the mean vorticity like exp(−νt); here the mean mode is left
undamped (it is zero for the benchmark's data, so the published data are unaffected).

All tensors stay on w0's device and in w0's dtype (float32 or float64), so the same code runs on the
CPU and on CUDA.
"""
import functools
import math

import numpy as np
import torch

from pde.data.grf import PeriodicGRF, sample_generators, wavenumbers


def ns_forcing(size: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """The benchmark's forcing 0.1·(sin(2π(x+y)) + cos(2π(x+y))) on linspace(0, 1, size+1)[:-1]², (size, size)."""
    x = torch.linspace(0, 1, size + 1, dtype=torch.float64)[:-1]
    xx, yy = torch.meshgrid(x, x, indexing="ij")
    f = 0.1 * (torch.sin(2 * math.pi * (xx + yy)) + torch.cos(2 * math.pi * (xx + yy)))
    return f.to(device=device, dtype=dtype)


def record_schedule(t_final: float, dt: float, record_steps: int) -> tuple[int, float]:
    """(solver steps between records, effective Δt) so that records fall exactly on k·t_final/record_steps.

    Δt is shrunk (never enlarged) to the nearest value that divides the record interval.
    """
    if t_final <= 0 or dt <= 0 or record_steps < 1:
        raise ValueError(f"need t_final > 0, dt > 0, record_steps >= 1; got {t_final}, {dt}, {record_steps}")
    interval = t_final / record_steps
    steps_per_record = max(1, math.ceil(interval / dt - 1e-9))
    return steps_per_record, interval / steps_per_record


def navier_stokes_2d(w0: torch.Tensor, forcing: torch.Tensor | None, visc: float, t_final: float,
                     dt: float, record_steps: int, *, record_stride: int = 1, progress: bool = False):
    """Solve the vorticity equation for a batch of initial conditions.

    Args:
        w0: initial vorticity, (B, S, S), real, S even; its device and dtype are used throughout.
        forcing: f as (S, S) or (B, S, S), or None for no forcing.
        visc: viscosity ν.
        t_final: final time T.
        dt: time step (shrunk slightly if needed so that the records land exactly on their times, see
            `record_schedule`).
        record_steps: number of records, at times t_final·k/record_steps for k = 1..record_steps.
        record_stride: keep every `record_stride`-th grid point in the records (sub-sampling the
            generation grid to the stored one, as the FNO data do with stride 4 from 256 to 64).
        progress: show a tqdm bar over solver steps.

    Returns:
        u: (B, S/stride, S/stride, record_steps) vorticity at the record times, w0's dtype and device.
        t: (record_steps,) the record times.
    """
    if w0.ndim != 3 or w0.shape[-1] != w0.shape[-2] or w0.shape[-1] % 2:
        raise ValueError(f"w0 must be (B, S, S) with S even, got shape {tuple(w0.shape)}")
    if w0.is_complex() or w0.dtype not in (torch.float32, torch.float64):
        raise ValueError(f"w0 must be a real float32/float64 tensor, got {w0.dtype}")
    batch, size = w0.shape[0], w0.shape[-1]
    device, rdtype = w0.device, w0.dtype
    if forcing is not None and (forcing.shape[-2:] != w0.shape[-2:] or forcing.ndim not in (2, 3)):
        raise ValueError(f"forcing must be (S, S) or (B, S, S) with S={size}, got shape {tuple(forcing.shape)}")
    if size % record_stride:
        raise ValueError(f"record_stride {record_stride} must divide the grid size {size}")
    steps_per_record, dt = record_schedule(t_final, dt, record_steps)

    k_first = wavenumbers(size, device)[:, None]                # varies along x (first grid axis)
    k_last = wavenumbers(size, device)[None, : size // 2 + 1]   # varies along y; rfft keeps 0..S/2
    lap = 4 * math.pi**2 * (k_first**2 + k_last**2)             # −Δ in Fourier space, (S, S/2+1)
    lap_guarded = lap.clone()
    lap_guarded[0, 0] = 1.0                                     # ψ̂ at k = 0 is irrelevant (ŵ₀ = 0 or mean only)
    k_max = size // 2
    dealias = ((k_first.abs() <= 2.0 / 3.0 * k_max) & (k_last.abs() <= 2.0 / 3.0 * k_max)).to(torch.float64)
    # Crank–Nicolson factors; the explicit terms share the denominator.
    denom = 1.0 + 0.5 * dt * visc * lap
    decay = ((1.0 - 0.5 * dt * visc * lap) / denom).to(rdtype)
    nonlinear_gain = (dt * dealias / denom).to(rdtype)
    cdtype = torch.complex64 if rdtype == torch.float32 else torch.complex128
    # i·2π·(k_y, −k_x, k_x, k_y): one stacked irfft2 gives (u, v, ∂x w, ∂y w) from (ψ, ψ, w, w).
    grad = (2j * math.pi * torch.stack([k_last.expand_as(lap), -k_first.expand_as(lap),
                                        k_first.expand_as(lap), k_last.expand_as(lap)])).to(cdtype)
    inv_lap = (1.0 / lap_guarded).to(rdtype)

    w_h = torch.fft.rfft2(w0)
    forcing_term = 0.0
    if forcing is not None:
        f_h = torch.fft.rfft2(forcing.to(device=device, dtype=rdtype))
        forcing_term = f_h * (dt / denom).to(rdtype)

    out = size // record_stride
    u = torch.empty(batch, out, out, record_steps, device=device, dtype=rdtype)
    total = steps_per_record * record_steps
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=f"navier-stokes {size}² x{batch}", unit="step", leave=False)
    for record in range(record_steps):
        for _ in range(steps_per_record):
            psi_h = w_h * inv_lap
            fields = torch.fft.irfft2(torch.stack([psi_h, psi_h, w_h, w_h], dim=1) * grad, s=(size, size))
            nonlinear = fields[:, 0] * fields[:, 2] + fields[:, 1] * fields[:, 3]
            w_h = decay * w_h + forcing_term - nonlinear_gain * torch.fft.rfft2(nonlinear)
        u[..., record] = torch.fft.irfft2(w_h, s=(size, size))[:, ::record_stride, ::record_stride]
        if bar is not None:
            bar.update(steps_per_record)
    if bar is not None:
        bar.close()
    t = torch.arange(1, record_steps + 1, device=device, dtype=torch.float64) * (t_final / record_steps)
    return u, t.to(rdtype)


def _speed_sum(w_h: torch.Tensor, size: int) -> torch.Tensor:
    """max over the grid of |u| + |v| for vorticity coefficients w_h (B, S, S/2+1) from rfft2: (B,)."""
    k_first = wavenumbers(size)[:, None]
    k_last = wavenumbers(size)[None, : size // 2 + 1]
    lap = 4 * math.pi**2 * (k_first**2 + k_last**2)
    lap[0, 0] = 1.0
    psi_h = w_h / lap
    u = torch.fft.irfft2(2j * math.pi * k_last * psi_h, s=(size, size))
    v = torch.fft.irfft2(-2j * math.pi * k_first * psi_h, s=(size, size))
    return (u.abs() + v.abs()).flatten(1).amax(1)


def forced_speed(size: int, visc: float, t_final: float) -> float:
    """max(|u| + |v|) of the flow the benchmark forcing drives by itself up to t_final.

    Each forced mode grows as the linear (Stokes) response ŵ_k(t) = f̂_k·(1 − e^(−ν|k|²t))/(ν|k|²)
    (|k|² meaning 4π²|k|² here), which increases with t, so t_final gives the largest value.
    """
    k_first = wavenumbers(size)[:, None]
    k_last = wavenumbers(size)[None, : size // 2 + 1]
    lap = 4 * math.pi**2 * (k_first**2 + k_last**2)
    rate = visc * lap
    growth = torch.where(rate > 0, -torch.expm1(-rate * t_final) / rate.clamp_min(1e-300),
                         torch.full_like(rate, t_final))
    f_h = torch.fft.rfft2(ns_forcing(size, dtype=torch.float64))
    return float(_speed_sum(f_h[None] * growth, size).amax())


def initial_speed(params: dict, seed: int, n_samples: int) -> float:
    """max(|u| + |v|) over the grid and over the initial vorticities of samples 0 .. n_samples−1 (the very
    fields `generate_batch` will draw for this seed). Cheap next to solving: ~30 s for the 1200 samples of a
    256² paper preset on 2 CPU cores, against hours of time stepping."""
    return _initial_speed(params["gen_res"], params["alpha"], params["tau"], seed, n_samples)


@functools.lru_cache(maxsize=16)
def _initial_speed(gen_res: int, alpha: float, tau: float, seed: int, n_samples: int, chunk: int = 64) -> float:
    # Cached: the three paper presets (ν = 1e-3, 1e-4, 1e-5) draw the same initial fields, so checking all of
    # them in one process (the presets' own test) computes these 1200 fields once.
    grf = PeriodicGRF(2, gen_res, alpha=alpha, tau=tau)
    top = 0.0
    for start in range(0, n_samples, chunk):
        w0 = grf.sample(sample_generators(seed, start, min(chunk, n_samples - start)), dtype=torch.float64)
        top = max(top, float(_speed_sum(torch.fft.rfft2(w0), gen_res).amax()))
    return top


def max_stable_dt(params: dict, seed: int, n_samples: int) -> tuple[float, str]:
    """The largest solver step the advective CFL condition allows, and a phrase saying where it comes from.

    The nonlinear term is explicit (forward Euler), so a step must not carry the flow across more than one
    grid cell: Δt·max(|u| + |v|)/Δx ≤ 1 with Δx = 1/gen_res (the 2-D Courant condition; the viscous term
    is Crank–Nicolson and sets no limit). The velocity bound is the initial flow of this run's samples
    plus the flow the forcing drives by itself up to T (`forced_speed`). That sum is an estimate, not a
    theorem: the nonlinear term moves energy between scales. Measured (4 samples, seed 0, max over the
    records) the largest |u| + |v| stayed below it for ν = 1e-3, T = 7.5 (16²: 0.17 vs 0.21; 32²: 0.21 vs
    0.24; 64²: 0.18 vs 0.25) and ν = 1e-4, T = 30 (64²: 0.67 vs 0.73), and exceeded it by 1.12× at
    ν = 1e-5, T = 20 (64²: 0.64 vs 0.57), where turbulence concentrates velocity.

    The condition is necessary, not sufficient: at ν = 1e-3 (64², T = 7.5) the data turned to garbage
    only 3–8× above this bound (Δt = 0.2: 1% error, 0.5: 11%), but at ν = 1e-5 the explicit nonlinear term
    diverged 5–8× below it (64², T = 10: Δt = 5e-3 diverged, 2e-3 did not; benchmarks/results/
    pde_data_dt_study.md). So this refuses steps that cannot work; the Δt study picks an accurate step.
    """
    speed = initial_speed(params, seed, n_samples) + forced_speed(params["gen_res"], params["visc"],
                                                                  params["t_final"])
    bound = 1.0 / (params["gen_res"] * speed)
    return bound, (f"advective CFL Δt·max(|u|+|v|)·gen_res ≤ 1 at --gen-res {params['gen_res']}, ν={params['visc']:g}, "
                   f"T={params['t_final']:g} with the benchmark forcing (max |u|+|v| ≈ {speed:.3g})")


def effective_dt(params: dict) -> float:
    """The step the solver really takes (see `record_schedule`)."""
    return record_schedule(params["t_final"], params["dt"], params["record_steps"])[1]


def sample_shapes(params: dict) -> dict:
    res = params["res"]
    return {"a": (res, res), "u": (res, res, params["record_steps"])}


def generate_batch(params: dict, seed: int, start: int, count: int, device="cpu", progress=False) -> dict:
    """Samples start .. start+count−1 of a Navier–Stokes dataset (see `pde.data.presets`).

    params: visc, t_final, dt, gen_res, res, record_steps, alpha, tau. Returns numpy float32 arrays
    a (count, res, res), u (count, res, res, record_steps), t (record_steps,).
    """
    gen_res, res = params["gen_res"], params["res"]
    if gen_res % res:
        raise ValueError(f"stored resolution {res} must divide the generation resolution {gen_res}")
    grf = PeriodicGRF(2, gen_res, alpha=params["alpha"], tau=params["tau"])
    w0 = grf.sample(sample_generators(seed, start, count), device=device, dtype=torch.float32)
    u, t = navier_stokes_2d(w0, ns_forcing(gen_res, device), params["visc"], params["t_final"], params["dt"],
                            params["record_steps"], record_stride=gen_res // res, progress=progress)
    stride = gen_res // res
    return {"a": w0[:, ::stride, ::stride].cpu().numpy(), "u": u.cpu().numpy(),
            "t": t.cpu().numpy().astype(np.float32)}
