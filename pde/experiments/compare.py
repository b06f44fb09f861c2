"""`pde compare`: FNOs with several transforms at one fixed training setting, as a study of the engine.

    python run.py pde compare datasets/ns-tiny.h5 --transforms fft,dense,monarch --epochs 20 --out runs/pde/compare

No tuning: every transform trains with the same given options (lr, weight decay, schedule, sizes) and
seed(s) for exactly `--epochs` epochs (the report says whether each run had converged by then). For an
equal-budget, tuned, multi-seed comparison use `pde study` (this command is its untuned special case:
`compare_spec` builds the StudySpec, one cell per dataset, the FFT FNO as baseline).
"""
from __future__ import annotations

from pathlib import Path

from common.errors import ConfigError

#: TrainConfig fields a study run sets itself (per run) or takes from the schedule.
RUN_FIELDS = ("run_dir", "seed", "epochs", "device", "resume", "overwrite", "progress", "stop_after",
              "trust_checkpoint", "step_size", "gamma", "cosine_epochs", "dataset", "transform")


def compare_spec(datasets, transforms, epochs: int, seeds=(0,), device: str = "auto", name: str = "compare",
                 **train_options):
    """The StudySpec of an untuned comparison (see the module docstring)."""
    from common.study import StudySpec

    from .models import TRANSFORMS

    kinds = []
    for item in transforms:
        kind, _, extra = item.partition("+")
        if kind not in TRANSFORMS or extra not in ("", "channels"):
            raise ConfigError(f"transform {item!r} is not one of {TRANSFORMS} (optionally KIND+channels)",
                              hint="pass --transforms as a comma list, e.g. fft,dense,monarch")
        kinds.append((item, kind, extra == "channels"))
    if "fft" not in [k for _, k, c in kinds if not c]:
        kinds.insert(0, ("fft", "fft", False))  # the baseline every ratio is taken to
    for path in datasets:
        if not Path(path).is_file():
            raise ConfigError(f"{path}: no such file", hint="generate it with `python run.py data …`")
    from .training import TrainConfig

    # every run's options, checked now: the engine would refuse them only once the study folder exists
    TrainConfig.from_dict({**{k: v for k, v in train_options.items() if v is not None},
                           "dataset": str(datasets[0]) if datasets else "", "epochs": max(int(epochs), 1),
                           "seed": seeds[0] if seeds else 0, "device": device}).validate()
    step, gamma, cosine = (train_options.get(k) for k in ("step_size", "gamma", "cosine_epochs"))
    schedule = ({"kind": "cosine"} if cosine else {"kind": "step", "step_epochs": step, "gamma": gamma} if step
                else {"kind": "constant"})
    problem = {k: v for k, v in train_options.items() if k not in RUN_FIELDS and v is not None}
    methods = [{"name": label, "options": {"transform": kind, "monarch_channels": channels}, "knobs": [],
                "role": "baseline" if label == "fft" else "method"} for label, kind, channels in kinds]
    cells = [{"dataset": str(path)} for path in datasets]
    return StudySpec.from_dict({
        "name": name, "application": "pde", "problem": problem, "cells": cells, "methods": methods,
        "seeds": list(seeds), "tune_seed": max(seeds) + 1000, "metric": "rel_l2", "schedule": schedule,
        "stopping": {"max_epochs": epochs, "min_epochs": epochs, "window": 0.25, "min_gain": 0.01},
        "device": device, "notes": f"Untuned comparison: every transform at the same fixed options for {epochs} epochs."})


def run_compare(datasets, transforms, epochs: int, out_dir, seeds=(0,), device: str = "auto",
                command: str | None = None, overwrite: bool = False, **train_options) -> dict:
    """Run the comparison into out_dir (resumable); returns the study's results (report.{md,json,png})."""
    from common.study.report import write_report
    from common.study.runner import run_study

    from .study import PdeStudyApp

    spec = compare_spec(datasets, transforms, epochs, seeds, device, **train_options)
    results = run_study(spec, PdeStudyApp(), out_dir, overwrite=overwrite)
    write_report(results, out_dir, "report", command)
    return results


__all__ = ["compare_spec", "run_compare"]
