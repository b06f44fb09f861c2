"""`python run.py bench data`: Navier–Stokes solver throughput, tiny-preset generation times, and the
time-step convergence study that fixes the presets' default Δt.

Results go to ``benchmarks/results/pde_data_bench.{json,md}`` and
``benchmarks/results/pde_data_dt_study.{json,md,png}``.
"""
import json
import math
import platform
import tempfile
import time
from pathlib import Path

import torch

from common.bench_results import refuse_overwrite, write_results
from common.device import resolve_device
from common.files import save_figure
from common.machine_load import LoadGuard, load_sentence
from pde.data.grf import PeriodicGRF, sample_generators
from pde.data.navier_stokes import navier_stokes_2d, ns_forcing


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ns_throughput(device, size: int, batch: int, steps: int = 50, visc: float = 1e-3) -> dict:
    """Time `steps` solver steps on a batch of GRF initial conditions; samples·steps per second."""
    w0 = PeriodicGRF(2, size, 2.5, 7.0).sample(sample_generators(0, 0, batch), device=device)
    forcing = ns_forcing(size, device)
    navier_stokes_2d(w0, forcing, visc, 5 * 1e-3, 1e-3, 1)  # warm-up (plans, allocator)
    _sync(device)
    start = time.perf_counter()
    navier_stokes_2d(w0, forcing, visc, steps * 1e-3, 1e-3, 1)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"device": str(device), "size": size, "batch": batch, "steps": steps, "seconds": seconds,
            "sample_steps_per_s": batch * steps / seconds}


def tiny_preset_seconds(device) -> dict:
    """Wall-clock seconds to generate each tiny preset end to end (HDF5 included)."""
    from pde.data.presets import generate

    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in ("ns-tiny", "burgers-tiny", "darcy-tiny"):
            start = time.perf_counter()
            generate(name, Path(tmp) / f"{name}.h5", device=device, progress=False)
            times[name] = time.perf_counter() - start
    return times


def run_bench(device_name="auto", out="benchmarks/results", quick=False, overwrite=False, allow_loaded=False) -> dict:
    """NS solver throughput (CPU, and the chosen CUDA device) and the tiny presets' generation time, written
    to <out>/pde_data_bench.{json,md}: refused before any timing when they exist (unless overwrite) or when
    the CPU is loaded (common.machine_load; allow_loaded writes a LOADED result)."""
    refuse_overwrite(out, "pde_data_bench", overwrite)
    guard = LoadGuard(torch.device("cpu"), allow_loaded, "bench data")  # the CPU is always measured
    devices = [torch.device("cpu")]
    chosen = resolve_device(device_name)
    if chosen.type != "cpu":
        devices.append(chosen)
    rows = []
    for device in devices:
        gpu = device.type == "cuda"
        for size, batch, steps in ((64, 200 if gpu else 20, 200 if gpu else 50),
                                   (256, 100 if gpu else 2, 100 if gpu else 10)):
            if quick:
                steps = max(5, steps // 5)
            rows.append(ns_throughput(device, size, batch, steps))
    # The full ns-v1e-3 preset: 1200 samples × 50 000 steps (T = 50, Δt = 1e-3) at 256².
    from pde.data.presets import get_preset

    preset = get_preset("ns-v1e-3")
    total = preset.n * math.ceil(preset.params["t_final"] / preset.params["dt"])
    for row in rows:
        if row["size"] == 256:
            row["ns_v1e3_preset_minutes"] = total / row["sample_steps_per_s"] / 60
    result = {"machine": _machine(), "ns_throughput": rows, "tiny_presets_seconds": tiny_preset_seconds("cpu")}
    result["load"] = guard.finish()
    write_results(out, "pde_data_bench", result, _bench_markdown(result, guard.label()))
    return result


def _machine() -> dict:
    info = {"platform": platform.platform(), "cpu_threads": torch.get_num_threads(), "torch": torch.__version__}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _bench_markdown(result, label: str = "") -> str:
    lines = ["# PDE data benchmark" + label, "", f"Machine: `{json.dumps(result['machine'])}`; "
             f"{load_sentence(result.get('load'))}.", "",
             "## Navier–Stokes solver throughput", "",
             "| device | grid | batch | steps | s | samples·steps/s | full ns-v1e-3 (min) |",
             "|---|---|---|---|---|---|---|"]
    for r in result["ns_throughput"]:
        est = f"{r['ns_v1e3_preset_minutes']:.1f}" if "ns_v1e3_preset_minutes" in r else ""
        lines.append(f"| {r['device']} | {r['size']}² | {r['batch']} | {r['steps']} | {r['seconds']:.2f} | "
                     f"{r['sample_steps_per_s']:.0f} | {est} |")
    lines += ["", "The full-preset estimate is 1200 samples × 50 000 steps (T = 50, Δt = 1e-3) divided by the "
              "measured throughput at 256².", "", "## Tiny presets (end-to-end generation on the CPU)", "",
              "| preset | seconds |", "|---|---|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in result["tiny_presets_seconds"].items()]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------------
# time-step convergence

def dt_study(cases=None, dts=(5e-4, 1e-3, 2e-3, 5e-3, 1e-2), reference_dt=1e-4, gen_res=64, res=64,
             n_samples=2, device="cpu", seed=0, out="benchmarks/results", max_time=None,
             production_dt=1e-3, overwrite=False) -> dict:
    """Relative L2 difference between NS data made with Δt and with `reference_dt`, at the recorded times.

    The reference and the Δt sweep run in float64, so the sweep measures the time-stepping error
    alone; one more run in float32 at `production_dt` (what the presets generate) measures what the
    stored data differ by (time error + float32 round-off, which grows with the number of steps).
    cases: [(name, visc, t_final)], default the three paper presets; `max_time` caps every t_final
    (a shorter horizon for small machines). Per case and run: the per-frame relative L2 difference
    ‖u − u_ref‖ / ‖u_ref‖ at the stored resolution, its maximum over samples and frames, and its
    sample-mean curve over time (for the figure). Existing results in `out` are refused unless overwrite.
    """
    refuse_overwrite(out, "pde_data_dt_study", overwrite)
    cases = cases or [("ns-v1e-3", 1e-3, 50.0), ("ns-v1e-4", 1e-4, 30.0), ("ns-v1e-5", 1e-5, 20.0)]
    device = resolve_device(device) if isinstance(device, str) else device
    stride = gen_res // res
    w0 = PeriodicGRF(2, gen_res, 2.5, 7.0).sample(sample_generators(seed, 0, n_samples), device=device,
                                                  dtype=torch.float64)
    forcing = ns_forcing(gen_res, device, torch.float64)
    runs = [(dt, torch.float64) for dt in dts] + [(production_dt, torch.float32)]
    result = {"gen_res": gen_res, "res": res, "n_samples": n_samples, "reference_dt": reference_dt,
              "device": str(device), "max_time": max_time, "machine": _machine(), "cases": []}
    for name, visc, t_final in cases:
        t_final = min(t_final, max_time) if max_time else t_final
        frames = max(1, int(t_final))
        start = time.perf_counter()
        ref, t = navier_stokes_2d(w0, forcing, visc, t_final, reference_dt, frames, record_stride=stride,
                                  progress=True)
        case = {"preset": name, "visc": visc, "t_final": t_final, "t": t.tolist(),
                "reference_seconds": time.perf_counter() - start, "runs": []}
        for dt, dtype in runs:
            u, _ = navier_stokes_2d(w0.to(dtype), forcing.to(dtype), visc, t_final, dt, frames,
                                    record_stride=stride, progress=True)
            diff = u.to(torch.float64) - ref
            rel = (diff.pow(2).sum((1, 2)) / ref.pow(2).sum((1, 2))).sqrt()  # (samples, frames)
            case["runs"].append({"dt": dt, "dtype": str(dtype).replace("torch.", ""),
                                 "max_rel_l2": rel.max().item(), "final_rel_l2": rel[:, -1].max().item(),
                                 "curve": rel.mean(0).tolist()})
        result["cases"].append(case)
        print(f"{name}: " + ", ".join(f"dt={r['dt']:g} {r['dtype']}: {r['max_rel_l2']:.2e}" for r in case["runs"]),
              flush=True)
    write_results(out, "pde_data_dt_study", result, _dt_markdown(result))
    _dt_figure(result, Path(out) / "pde_data_dt_study.png")
    return result


def _dt_markdown(result) -> str:
    lines = ["# Navier–Stokes time-step study", "",
             f"Relative L2 difference, per recorded frame, between data made with Δt and with Δt = "
             f"{result['reference_dt']:g} in float64: maximum over {result['n_samples']} GRF samples and all "
             f"frames. Grid {result['gen_res']}² (stored {result['res']}²) on {result['device']}, "
             f"one frame per time unit up to T (capped at {result['max_time']} when given).", "",
             "| preset | ν | T | " + " | ".join(f"Δt={r['dt']:g} {r['dtype']}" for r in result["cases"][0]["runs"])
             + " |", "|---|---|---|" + "---|" * len(result["cases"][0]["runs"])]
    for c in result["cases"]:
        lines.append(f"| {c['preset']} | {c['visc']:g} | {c['t_final']:g} | "
                     + " | ".join(f"{r['max_rel_l2']:.1e}" for r in c["runs"]) + " |")
    lines += ["", "Figure: `pde_data_dt_study.png` (mean over samples of the per-frame difference against time)."]
    return "\n".join(lines) + "\n"


def _dt_figure(result, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cases = result["cases"]
    fig, axes = plt.subplots(1, len(cases), figsize=(4.5 * len(cases), 3.6), squeeze=False)
    for ax, case in zip(axes[0], cases):
        for r in case["runs"]:
            ax.semilogy(case["t"], [max(v, 1e-16) for v in r["curve"]], marker="o", ms=3,
                        ls="--" if r["dtype"] == "float32" else "-", label=f"Δt={r['dt']:g} {r['dtype']}")
        ax.axhline(1e-3, color="k", lw=0.8, ls="--")
        ax.set_title(f"{case['preset']} (ν={case['visc']:g})")
        ax.set_xlabel("t")
        ax.set_ylabel(f"rel. L2 vs Δt={result['reference_dt']:g}")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"NS time-step study, {result['gen_res']}² grid, {result['n_samples']} samples")
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
