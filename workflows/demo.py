"""`python run.py demo`: the main job end to end on a small embedded default.

Two studies of the shared engine (`common.study`), at their smoke presets: the PDE study (`pde-smoke`:
FNOs with the FFT, dense, Monarch and diagonal transforms and the parameter-matched FFT control on a
tiny Burgers problem) and the MRI study (`mri-smoke`: learned reconstructions with the FFT and with
Monarch against CG-SENSE and L1-wavelet on simulated multi-coil scans). Each study generates its data
(seeded; reruns reuse the files and resume the runs), tunes every method with the same Optuna budget,
trains the final seeds, evaluates the test split once and writes its report; the demo's report.md puts
both side by side.

The sizes are a demo's (minutes on a laptop CPU), not the papers': the report says so and points to
the real studies (`run.py pde study burgers-cpu`, `run.py pde study ns-gpu`, `run.py mri study mri-cpu`).
"""
from __future__ import annotations

import dataclasses
import re
import time
from pathlib import Path

from common.files import write_json_atomic, write_text_atomic

#: sizes → engine overrides of the smoke presets: "cpu" (≈ 2 minutes on a 2-core CPU) trains long enough for
#: the curves to flatten, "gpu" longer, "smoke" (tests) runs every step with the least work. The cosine runs
#: stop no earlier than ~80 % of max_epochs (the rule waits for the rate to decay), so "cpu" caps them at 24
SIZES = {"cpu": {"tuning": {"trials": 4, "epochs": 6}, "stopping": {"max_epochs": 24, "min_epochs": 10}},
         "gpu": {"tuning": {"trials": 8, "epochs": 10}, "stopping": {"max_epochs": 100, "min_epochs": 20}},
         "smoke": {"seeds": (0, 1), "tuning": {"trials": 1, "epochs": 2, "max_widenings": 0},
                   "stopping": {"max_epochs": 2, "min_epochs": 2}}}
STUDIES = (("pde", "pde-smoke"), ("mri", "mri-smoke"))


def _in_data_dir(value, data_dir: Path):
    """Spec values naming files under datasets/ moved to the demo's data folder (recursively)."""
    if isinstance(value, str) and value.startswith("datasets/"):
        return str(data_dir / value[len("datasets/"):])
    if isinstance(value, dict):
        return {k: _in_data_dir(v, data_dir) for k, v in value.items()}
    if isinstance(value, list):
        return [_in_data_dir(v, data_dir) for v in value]
    return value


def demo_spec(application: str, preset: str, sizes: str, data_dir: Path, device: str):
    """The StudySpec the demo runs for one application."""
    if application == "pde":
        from pde.experiments.study_presets import PRESETS
    else:
        from mri.recon.study_presets import PRESETS
    spec = PRESETS[preset]()
    changes = dict(SIZES[sizes])
    for key in ("tuning", "stopping"):
        if key in changes:
            changes[key] = dataclasses.replace(getattr(spec, key), **changes[key])
    return spec.replace(problem=_in_data_dir(spec.problem, data_dir), cells=_in_data_dir(spec.cells, data_dir),
                        device=device, **changes)


def _app(application: str):
    if application == "pde":
        from pde.experiments.study import PdeStudyApp

        return PdeStudyApp()
    from mri.recon.study import MriStudyApp

    return MriStudyApp()


def run_demo(out_dir: str = "runs/demo", data_dir: str = "datasets", device: str = "auto", sizes: str = "auto") -> Path:
    """Run the whole demo; returns the path of report.md."""
    import torch

    from common.study.report import markdown, write_report
    from common.study.runner import run_study

    started = time.perf_counter()
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = ("gpu" if device.startswith("cuda") else "cpu") if sizes == "auto" else sizes
    out, data = Path(out_dir), Path(data_dir)
    print(f"[demo] sizes '{sizes}' on {device}; data in {data}/, results in {out}/", flush=True)
    sections = []
    for step, (application, preset) in enumerate(STUDIES, 1):
        spec = demo_spec(application, preset, sizes, data, device)
        print(f"[demo] {step}/{len(STUDIES)} {application} study {spec.name}: "
              f"{', '.join(m.name for m in spec.methods)}", flush=True)
        results = run_study(spec, _app(application), out / application, overwrite=True)
        write_report(results, out / application, "report", "python run.py demo")
        body = markdown(results).split("\n", 1)[1]  # without its title: the section heading replaces it
        sections += [f"## {application.upper()}: study `{spec.name}`\n",
                     re.sub(r"^(#+) ", r"#\1 ", body, flags=re.M),  # its headings one level down
                     f"![{application} curves and intervals]({application}/report.png)\n"]
    elapsed = time.perf_counter() - started
    lines = ["# Demo report: Monarch transforms in neural PDE solvers and MRI reconstruction\n",
             f"**This is a demo, not a benchmark.** Device: {device}; sizes `{sizes}`; wall time {elapsed / 60:.1f} "
             "min. With so little data and training the numbers show that every step runs, not which transform "
             "is better. The real studies: `python run.py pde study burgers-cpu` (FNO paper, Burgers s = 1024), "
             "`python run.py pde study ns-gpu` (Navier–Stokes ν = 1e-3, one GPU), `python run.py mri study mri-cpu` "
             "— see README.md.\n", *sections,
             "## Files\n", "- `pde/report.{md,json,png}`, `mri/report.{md,json,png}`: each study's report, the JSON "
             "holding every per-sample value; `demo.json`: the settings of this demo.\n"]
    path = write_text_atomic(out / "report.md", "\n".join(lines))
    write_json_atomic(out / "demo.json", {"sizes": sizes, "device": device, "elapsed_seconds": elapsed,
                                          "studies": [p for _, p in STUDIES], "overrides": SIZES[sizes]})
    return path
