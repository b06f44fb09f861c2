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
