"""The whole comparison table (the paper's Tables 4 and 5 on our data), as one function.

    report = run_compare("datasets/mri-sim-default", accelerations=(2, 4, 8), n_train_scans=(1, 2, 4))

Rows: every model at every acceleration with the most training scans (Table 4), and every trained
model at the first acceleration with each number of training scans (Table 5); untrained models
(zf, cg-sense, l1-wavelet) appear once per acceleration with n_train_scans = 0. Test scans are the last
`n_test_scans` scans (default: all scans after the largest training set), disjoint from training.
Writes <stem>.json (with `rows`), <stem>.md, <stem>_examples.png (reconstructions and error maps at the
first acceleration) and <stem>_curves.png into out_dir; training runs go to out_dir/runs/ and resume.
When the dataset's meta.json names splits, training (first N of "train"), validation ("val", picks
each run's best.pt) and test ("test") scans come from it.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

from common.device import resolve_device
from common.environment import device_name
from common.errors import ConfigError
from common.files import write_json_atomic, write_text_atomic
from common.stats import format_mean_se
from monarch_core import count_parameters
from mri.recon.evaluation import METRICS, evaluate, format_report
from mri.recon.model_names import DEFAULT_MODELS, known_models, transform_of, untrained_models
from mri.recon.models import build_model, transform_parameter_count
from mri.recon.plots import plot_curves, plot_examples
from mri.recon.training import TrainConfig, all_scan_ids, dataset_splits, load_model, train

_TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def run_compare(data_dir, models=DEFAULT_MODELS, accelerations=(2.0, 4.0, 8.0), n_train_scans=(1, 2, 4),
                epochs: int = 10, out_dir="runs/mri/compare", device="auto", n_test_scans: int | None = None,
                stem: str = "mri_recon_compare", command: str | None = None, classical: dict | None = None,
                table5_models=None, progress: bool = True, **overrides) -> dict:
    """Train and evaluate every (model, acceleration, n_train_scans) of the grid; returns the report dict.

    overrides: TrainConfig fields (scale, lr, transform_lr, batch_size, masks, loss, seed, amp,
    max_slices_per_scan, model_kwargs, weight_decay, ...). classical: build_model options of the
    classical baselines (lamda, max_iter). `max_slices_per_scan` also limits the test slices.
    table5_models: the trained models run at every number of training scans (default: all of them;
    the paper's Table 5 has U-Net and mSENSE only); the others train on the most scans only.
    """
    unknown = [m for m in models if m not in known_models()]
    bad = sorted(set(overrides) - _TRAIN_FIELDS)
    if unknown or bad:
        raise ConfigError(f"unknown models {unknown} (choose from {known_models()}) or options {bad} "
                          f"(TrainConfig fields: {sorted(_TRAIN_FIELDS)})")
    out_dir, device = Path(out_dir), resolve_device(device)
    accelerations = [float(a) for a in accelerations]
    n_train_scans = sorted(int(n) for n in n_train_scans)
    n_max = n_train_scans[-1]
    splits = dataset_splits(data_dir)
    if splits:
        ids = splits["train"]
        test_ids = splits["test"][-n_test_scans:] if n_test_scans else splits["test"]
        if n_max > len(ids) or not test_ids:
            raise ConfigError(f"{data_dir}/meta.json names {len(ids)} training and {len(splits['test'])} test scans; "
                              f"{n_max} training scans asked for")
    else:
        ids = all_scan_ids(data_dir, overrides.get("format", "auto"))
        n_test = n_test_scans or len(ids) - n_max
        if n_test < 1 or n_max + n_test > len(ids):
            raise ConfigError(f"{data_dir} holds {len(ids)} scans: not enough for {n_max} training + {n_test} test "
                              "scans", hint="lower --n-train-scans / --n-test-scans or simulate more scans")
        test_ids = ids[-n_test:]
    grid = [(a, n_max) for a in accelerations] + [(accelerations[0], n) for n in n_train_scans if n != n_max]
    max_slices = overrides.get("max_slices_per_scan")
    eval_kw = dict(scans=test_ids, echo=overrides.get("echo", 0), device=device, max_slices_per_scan=max_slices,
                   batch_size=overrides.get("batch_size", 8), format=overrides.get("format", "auto"))
    rows, examples, t_start = [], {}, time.perf_counter()
    for model_name in models:
        if model_name in untrained_models():
            cells = [(a, 0) for a in accelerations]
        elif table5_models is None or model_name in table5_models:
            cells = grid
        else:
            cells = [(a, n_max) for a in accelerations]
        for acc, n in cells:
            t0 = time.perf_counter()
            if n == 0:
                shape = _slice_shape(data_dir, test_ids[0], overrides.get("format", "auto"))
                model = build_model(model_name, shape, overrides.get("scale", "small"), **(classical or {}))
                train_seconds = 0.0
            else:
                options = {"resume": True, **overrides}
                name = f"{model_name}_acc{acc:g}_n{n}_seed{options.get('seed', 0)}"  # fixed: the grid resumes
                cfg = TrainConfig(data_dir=str(data_dir), model=model_name, acceleration=acc, n_train_scans=n,
                                  epochs=epochs, device=str(device), out_dir=str(out_dir / "runs"), run_name=name,
                                  progress=progress, **options)
                run_dir = train(cfg)
                model, _ = load_model(run_dir, "best", device, trust=cfg.trust_checkpoint)
                train_seconds = time.perf_counter() - t0
            report = evaluate(model, data_dir, acc, **eval_kw)
            row = {"model": model_name, "transform": transform_of(model_name), "acceleration": acc,
                   "n_train_scans": n, "params": count_parameters(model),
                   "transform_params": transform_parameter_count(model),
                   **{f"{m}_{s}": report[f"{m}_{s}"] for m in METRICS for s in ("mean", "se")},
                   "train_seconds": round(train_seconds, 2), "slices_per_s": report["slices_per_s"],
                   "per_volume": report["per_volume"]}
            rows.append(row)
            if acc == accelerations[0] and n in (0, n_max):
                examples[model_name] = report["example"]
            if progress:
                print(format_report(f"{model_name} {acc:g}× N={n}", report), flush=True)

    result = {"rows": rows, "data_dir": str(data_dir), "train_scans": ids[:n_max], "test_scans": test_ids,
              "accelerations": accelerations, "n_train_scans": n_train_scans, "epochs": epochs,
              "overrides": overrides, "classical": classical or {}, "table5_models": table5_models,
              "command": command or " ".join(["python"] + sys.argv), "device": device_name(device),
              "wall_seconds": round(time.perf_counter() - t_start, 1)}
    result["gaps"] = headline_gaps(rows, accelerations, n_train_scans)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out_dir / f"{stem}.json", result)
    write_text_atomic(out_dir / f"{stem}.md", markdown(result))
    if examples:
        target = next(iter(examples.values()))["target"]
        plot_examples(target, {k: v["prediction"] for k, v in examples.items()}, out_dir / f"{stem}_examples.png",
                      f"test slice, {accelerations[0]:g}×, {n_max} training scan(s)")
    plot_curves(rows, accelerations, n_max, accelerations[0], out_dir / f"{stem}_curves.png")
    return result


def _slice_shape(data_dir, scan_id, format="auto"):
    from mri.recon.training import open_slices

    return open_slices(data_dir, [scan_id], None, format=format).slice_shape(scan_id)


def _find(rows, model, acc, n):
    for r in rows:
        if r["model"] == model and r["acceleration"] == acc and r["n_train_scans"] in (n, 0):
            return r
    return None


def headline_gaps(rows, accelerations, n_train_scans) -> dict:
    """PSNR gaps the paper headlines, where both rows exist: mSENSE − zf (per acceleration, most
    scans), mSENSE − U-Net (first acceleration, per number of scans), unrolled-monarch − unrolled-fft."""
    gaps = {}
    n_max = n_train_scans[-1]
    for acc in accelerations:
        for a, b in (("msense", "zf"), ("unrolled-monarch", "unrolled-fft"), ("unrolled-dense", "unrolled-fft")):
            ra, rb = _find(rows, a, acc, n_max), _find(rows, b, acc, n_max)
            if ra and rb:
                gaps[f"{a} - {b} @ {acc:g}x, N={n_max}"] = round(ra["psnr_mean"] - rb["psnr_mean"], 3)
    for n in n_train_scans:
        ra, rb = _find(rows, "msense", accelerations[0], n), _find(rows, "unet", accelerations[0], n)
        if ra and rb:
            gaps[f"msense - unet @ {accelerations[0]:g}x, N={n}"] = round(ra["psnr_mean"] - rb["psnr_mean"], 3)
    return gaps


def _cell(r):
    return f"{format_mean_se(r['psnr_mean'], r['psnr_se'], 2)} / {r['ssim_mean']:.3f}" if r else "—"


def markdown(result: dict) -> str:
    rows, accs, ns = result["rows"], result["accelerations"], result["n_train_scans"]
    models = list(dict.fromkeys(r["model"] for r in rows))
    n_max = ns[-1]
    lines = ["# MRI reconstruction comparison", "",
             f"Data `{result['data_dir']}`; training scans (first N of) {result['train_scans']}; test scans "
             f"{result['test_scans']}; {result['epochs']} epochs; options {json.dumps(result['overrides'])}; "
             f"classical {json.dumps(result['classical'])}; device: {result['device']}; wall time "
             f"{result['wall_seconds']} s.", "", f"Command: `{result['command']}`", "",
             "Cells: magnitude PSNR (dB, data range = volume max) mean ± s.e. over test volumes / SSIM.", "",
             f"## PSNR / SSIM per acceleration ({n_max} training scans; paper Table 4)", "",
             "| model | transform | params | " + " | ".join(f"{a:g}×" for a in accs) + " |",
             "|---|---|---|" + "---|" * len(accs)]
    for m in models:
        cells = [_find(rows, m, a, n_max) for a in accs]
        any_row = next(r for r in cells if r) if any(cells) else None
        if any_row:
            lines.append(f"| {m} | {any_row['transform']} | {any_row['params']:,} | " + " | ".join(map(_cell, cells)) + " |")
    lines += ["", f"## PSNR / SSIM per number of training scans ({accs[0]:g}×; paper Table 5)", "",
              "| model | " + " | ".join(f"N={n}" for n in ns) + " |", "|---|" + "---|" * len(ns)]
    for m in models:
        lines.append(f"| {m} | " + " | ".join(_cell(_find(rows, m, accs[0], n)) for n in ns) + " |")
    lines += ["", "## Headline gaps (PSNR dB; paper: mSENSE − SENSE +1.5 at 2×, mSENSE − U-Net +4.4 at N=1)", ""]
    lines += [f"- {k}: {v:+.2f}" for k, v in result["gaps"].items()]
    lines += ["", "nRMSE and complex PSNR per row, per-volume values and train times are in the JSON.", ""]
    return "\n".join(lines)
