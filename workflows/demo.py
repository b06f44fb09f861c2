"""`python run.py demo`: the main job end to end on a small embedded default.

1. data: generate (or reuse) a tiny Navier–Stokes dataset and a tiny simulated multi-coil MRI dataset
   into datasets/ (seeded; reruns reuse the files);
2. PDE: train an FNO with every registered transform kind (monarch_core.TRANSFORM_KINDS) briefly on the same split and seed and evaluate them;
3. MRI: zero-filled SENSE, mSENSE and a small unrolled network with the FFT and with Monarch;
4. report: runs/demo/report.md with both tables, the JSON behind them and the PNG plots.

The sizes are a demo's (minutes on a laptop CPU), not the papers': the report says so and points to
the full protocols (`run.py pde compare`, `run.py mri compare`). On a GPU the same command runs the
larger `gpu` sizes.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from common.files import write_text_atomic


@dataclass(frozen=True)
class DemoSizes:
    """Everything that differs between the CPU and the GPU demo."""
    ns_preset: str
    ns_samples: int | None  # None: the preset's count
    ns_res: int | None  # stored resolution; None: the preset's
    pde_epochs: int
    pde_options: dict
    mri_preset: str
    mri_sim_options: dict
    mri_epochs: int
    mri_accelerations: tuple
    mri_options: dict = field(default_factory=dict)


SIZES = {
    # ~4 minutes on a 2-core CPU, data generation included
    "cpu": DemoSizes(ns_preset="ns-tiny", ns_samples=None, ns_res=None, pde_epochs=20,
                     pde_options={"batch_size": 8, "n_modes": (12, 12), "hidden_channels": 16, "step_size": 100},
                     mri_preset="tiny", mri_sim_options={"n_test": 2}, mri_epochs=40, mri_accelerations=(4.0,),
                     mri_options={"scale": "tiny", "batch_size": 4, "lr": 2e-3, "transform_lr": 2e-3}),
    # one GPU: the paper's ν=1e-3 Navier–Stokes at 64² with a shortened horizon, 256² brain MRI
    "gpu": DemoSizes(ns_preset="ns-v1e-3", ns_samples=300, ns_res=None, pde_epochs=100,
                     pde_options={"batch_size": 20, "t_out": 10, "step_size": 50},
                     mri_preset="tiny", mri_sim_options={"shape": (128, 128), "n_scans": 6, "slices": 8, "coils": 8},
                     mri_epochs=30, mri_accelerations=(2.0, 4.0),
                     mri_options={"scale": "small", "batch_size": 4, "lr": 1e-3, "transform_lr": 1e-3}),
    # the smallest setting (tests and CI): every step of the demo runs, nothing is learned
    "smoke": DemoSizes(ns_preset="ns-tiny", ns_samples=12, ns_res=32, pde_epochs=1,
                       pde_options={"batch_size": 4, "n_modes": (8, 8), "hidden_channels": 8},
                       mri_preset="tiny", mri_sim_options={"slices": 2, "n_test": 2}, mri_epochs=1, mri_accelerations=(4.0,),
                       mri_options={"scale": "tiny", "batch_size": 2}),
}
MRI_MODELS = ("zf", "msense", "unrolled-fft", "unrolled-monarch")  # the paper's models, at demo cost


def prepare_data(sizes_name: str, sizes: DemoSizes, data_dir: Path, device: str) -> tuple[Path, Path]:
    """Generate (or reuse) the demo's PDE file and MRI folder; both generators are seeded and resumable."""
    from mri.data.presets import PRESETS as MRI_PRESETS
    from mri.data.simulate import simulate_dataset
    from pde.data.presets import configure, generate

    suffix = "".join(f"-{tag}{v}" for tag, v in (("n", sizes.ns_samples), ("r", sizes.ns_res)) if v is not None)
    ns_path = data_dir / f"{sizes.ns_preset}{suffix}.h5"
    if not ns_path.exists():
        preset = configure(sizes.ns_preset, n=sizes.ns_samples, res=sizes.ns_res)
        generate(preset, ns_path, seed=0, device=device)
    mri_config = MRI_PRESETS[sizes.mri_preset].replace(**sizes.mri_sim_options)
    mri_dir = data_dir / (f"mri-sim-{sizes.mri_preset}" if not sizes.mri_sim_options else f"mri-sim-demo-{sizes_name}")
    simulate_dataset(mri_config, mri_dir)  # skips scans that are already complete
    return ns_path, mri_dir


def write_demo_report(out_dir: Path, sizes_name: str, sizes: DemoSizes, device: str, pde: dict,
                      elapsed: float) -> Path:
    """runs/demo/report.md: a header that says what this demo is, both tables, links to the plots."""
    from workflows.report import build_report, table_sections

    aggregate = build_report([str(out_dir / "pde"), str(out_dir / "mri")], str(out_dir), overwrite=True)
    tables = "\n".join(table_sections(aggregate["pde_rows"], aggregate["mri_rows"]))
    # the comparison plots, plus predicted fields of the FFT and Monarch models (each run has more in its folder)
    pde_plots = sorted(p.relative_to(out_dir).as_posix() for p in [*(out_dir / "pde").glob("*.png"),
                       *(out_dir / "pde").glob("*/fft/fields.png"), *(out_dir / "pde").glob("*/monarch/fields.png")])
    mri_plots = sorted(p.relative_to(out_dir).as_posix() for p in (out_dir / "mri").glob("*.png"))
    lines = [
        "# Demo report: Monarch transforms in neural PDE solvers and MRI reconstruction\n",
        f"**This is a demo, not a benchmark.** Device: {device}; sizes `{sizes_name}`; wall time "
        f"{elapsed / 60:.1f} min. PDE: `{sizes.ns_preset}` Navier–Stokes, {pde['epochs']} epochs per model. "
        f"MRI: simulated `{sizes.mri_preset}` scans, {sizes.mri_epochs} epochs, accelerations "
        f"{', '.join(f'{a:g}×' for a in sizes.mri_accelerations)}. With so little data and training the numbers "
        "mostly show that everything runs; the full protocols are `python run.py pde compare` (FNO paper: "
        "ν=1e-3, 1000/200 samples, 500 epochs) and `python run.py mri compare` (paper Tables 4 and 5) — "
        "see README.md.\n",
        tables,
        "## Plots\n",
        *[f"![{p}]({p})\n" for p in pde_plots + mri_plots],
        "## Files\n",
        "- `report.json`: the merged rows of both tables; `pde/compare.json`, `mri/compare.json`: everything "
        "behind them (per-step errors, per-volume metrics, settings, commands).\n",
        "- settings of this demo: `demo.json`.\n",
    ]
    path = write_text_atomic(out_dir / "report.md", "\n".join(lines))
    write_text_atomic(out_dir / "demo.json", json.dumps(
        {"sizes": sizes_name, "settings": asdict(sizes), "device": device, "elapsed_seconds": elapsed,
         "pde_rows": len(aggregate["pde_rows"]), "mri_rows": len(aggregate["mri_rows"])}, indent=2, default=str))
    return path


def run_demo(out_dir: str = "runs/demo", data_dir: str = "datasets", device: str = "auto", sizes: str = "auto") -> Path:
    """Run the whole demo; returns the path of report.md."""
    from monarch_core import TRANSFORM_KINDS
    from mri.recon.compare import run_compare as mri_compare
    from pde.experiments.compare import run_compare as pde_compare

    started = time.perf_counter()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes_name = ("gpu" if device.startswith("cuda") else "cpu") if sizes == "auto" else sizes
    demo = SIZES[sizes_name]
    out, data = Path(out_dir), Path(data_dir)
    print(f"[demo] sizes '{sizes_name}' on {device}; data in {data}/, results in {out}/", flush=True)

    print("[demo] 1/4 data", flush=True)
    ns_path, mri_dir = prepare_data(sizes_name, demo, data, device)

    print(f"[demo] 2/4 PDE: {' / '.join(TRANSFORM_KINDS)} FNOs on {ns_path.name}", flush=True)
    pde = pde_compare([ns_path], transforms=TRANSFORM_KINDS, epochs=demo.pde_epochs, out_dir=out / "pde",
                      device=device, command="python run.py demo", resume=True, **demo.pde_options)

    print(f"[demo] 3/4 MRI: {', '.join(MRI_MODELS)} on {mri_dir.name}", flush=True)
    mri_compare(mri_dir, models=MRI_MODELS, accelerations=demo.mri_accelerations, n_train_scans=(1,),
                      epochs=demo.mri_epochs, out_dir=out / "mri", device=device, stem="compare",
                      command="python run.py demo", progress=False, **demo.mri_options)

    print("[demo] 4/4 report", flush=True)
    elapsed = time.perf_counter() - started
    report = write_demo_report(out, sizes_name, demo, device, pde, elapsed)
    return report
