"""`mri compare`: reconstruction models at one fixed training setting on a folder of scans, as a study of
the engine (`common.study`, application `mri.recon.study.MriStudyApp`).

    python run.py mri compare --data datasets/mri-sim-default --accelerations 2 4 8 --n-train-scans 1 2 4
    results = run_compare("datasets/mri-sim-default", ("zf", "msense"), (2.0, 4.0), (1, 4), epochs=10, out_dir=…)

No tuning: every trained model trains with the same given options (lr, transform lr, weight decay,
schedule, sizes) and seed(s) for exactly `epochs` epochs; the untrained ones (zf, cg-sense, l1-wavelet,
bart-*) run at their default λ. Cells (the paper's Tables 4 and 5 on our data): every acceleration with
the most training scans, and the first acceleration with each other number of training scans. Scans:
the dataset's meta.json splits when it names them (training: the first N of "train"; "val" picks each
run's best.pt; "test"), else the first N scans train and the last `n_test_scans` (default: all after
the largest training set) test. The report (OUT/report.{md,json,png}) gives per-slice PSNR, SSIM and NMSE
per seed and every model's PSNR difference to the baseline (zf when compared, else the first model) with
two-level intervals. For an equal-budget, tuned, multi-seed comparison use `mri study`.
"""
from __future__ import annotations

import math
from pathlib import Path

from common.errors import ConfigError

#: TrainConfig fields a study run sets itself (per run, per cell) or takes from the schedule
RUN_FIELDS = ("data_dir", "model", "acceleration", "n_train_scans", "train_scans", "val_scans", "out_dir",
              "run_name", "resume", "overwrite", "epochs", "seed", "device", "progress", "stop_after",
              "trust_checkpoint", "step_size", "gamma", "cosine_epochs", "mask_pool_dir")


def compare_spec(data_dir, models, accelerations, n_train_scans, epochs: int, seeds=(0,), device: str = "auto",
                 n_test_scans: int | None = None, classical_iters: int | None = None, name: str = "compare",
                 **train_options):
    """The StudySpec of an untuned comparison (see the module docstring); train_options: TrainConfig
    fields (scale, lr, transform_lr, weight_decay, batch_size, masks, loss, model_kwargs, …)."""
    from common.study import StudySpec
    from mri.recon.model_names import is_trainable, known_models
    from mri.recon.study import PROBLEM

    unknown = [m for m in models if m not in known_models()]
    if unknown or not models:
        raise ConfigError(f"models {list(models)}: unknown {unknown}" if unknown else "no models to compare",
                          hint=f"choose from {', '.join(known_models())}")
    if not accelerations or any(not math.isfinite(float(a)) or float(a) <= 1 for a in accelerations):
        raise ConfigError(f"--accelerations {list(accelerations)}; expected undersampling factors > 1")
    counts = sorted({int(n) for n in n_train_scans})
    if not counts or counts[0] < 1:
        raise ConfigError(f"--n-train-scans {list(n_train_scans)}; expected training-set sizes ≥ 1")
    if not Path(data_dir).is_dir():
        raise ConfigError(f"{data_dir}: no such data folder",
                          hint="simulate one (run.py data mri-sim) or point --data at SKM-TEA / fastMRI files")
    unused = sorted(k for k in train_options if k not in PROBLEM and k not in RUN_FIELDS)
    if unused:
        raise ConfigError(f"training option(s) {unused} cannot be set for a comparison")
    trainable = [m for m in models if is_trainable(m)]
    if trainable:  # every training run's options, checked before the study folder exists
        from mri.recon.training import TrainConfig

        TrainConfig.from_dict({**{k: v for k, v in train_options.items() if v is not None}, "model": trainable[0],
                               "data_dir": str(data_dir), "acceleration": float(accelerations[0]),
                               "n_train_scans": counts[0], "epochs": max(int(epochs), 1),
                               "seed": seeds[0] if seeds else 0, "device": device}).validate()
    step, gamma, cosine = (train_options.get(k) for k in ("step_size", "gamma", "cosine_epochs"))
    schedule = ({"kind": "cosine"} if cosine else {"kind": "step", "step_epochs": step, "gamma": gamma} if step
                else {"kind": "constant"})
    problem = {"masks": "fixed"}  # TrainConfig's default (a study's is "random")
    problem.update({k: v for k, v in train_options.items() if k in PROBLEM and v is not None})
    problem.update(data_dir=str(data_dir), n_test_scans=n_test_scans)
    if classical_iters is not None:
        problem["classical_iters"] = int(classical_iters)
    baseline = "zf" if "zf" in models else models[0]
    methods = [{"name": m, "knobs": [], "role": "baseline" if m == baseline else "method",
                "trained": is_trainable(m), "options": {"model": m} if is_trainable(m) else {"classical": m}}
               for m in dict.fromkeys(models)]
    accs = [float(a) for a in accelerations]
    cells = [{"acceleration": a, "n_train_scans": counts[-1]} for a in accs]
    cells += [{"acceleration": accs[0], "n_train_scans": n} for n in counts[:-1]]
    return StudySpec.from_dict({
        "name": name, "application": "mri", "problem": problem, "cells": cells, "methods": methods,
        "seeds": list(seeds), "tune_seed": max(seeds) + 1000, "metric": "psnr", "direction": "higher",
        "statistic": "difference", "schedule": schedule,
        "stopping": {"max_epochs": epochs, "min_epochs": epochs, "window": 0.25, "min_gain": 0.01},
        "device": device, "notes": f"Untuned comparison: every model at the same fixed options for {epochs} epochs."})


def run_compare(data_dir, models, accelerations, n_train_scans, epochs: int, out_dir, seeds=(0,),
                device: str = "auto", command: str | None = None, overwrite: bool = False, **options) -> dict:
    """Run the comparison into out_dir (resumable); returns the study's results (report.{md,json,png})."""
    from common.study.report import write_report
    from common.study.runner import run_study
    from mri.recon.study import MriStudyApp

    spec = compare_spec(data_dir, models, accelerations, n_train_scans, epochs, seeds, device, **options)
    results = run_study(spec, MriStudyApp(), out_dir, overwrite=overwrite)
    write_report(results, out_dir, "report", command)
    return results


__all__ = ["compare_spec", "run_compare"]
