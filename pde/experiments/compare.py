"""`run_compare`: train fft / dense / monarch FNOs on the same data, split and seed; one report.

The report (compare.json, compare.md, compare.png in out_dir) has the paper's table layout — one row
per transform, one column per dataset — with the error ratio to the FFT baseline and the parameter
overhead. compare.json["rows"] holds one entry per (dataset, transform) with dataset, transform,
rel_l2_mean, rel_l2_se, params (total), transform_params, ratio_to_fft, param_overhead, epochs,
train_seconds_per_epoch, inference_samples_per_second.
"""
from __future__ import annotations

import time
from pathlib import Path

from common.files import write_json_atomic, write_text_atomic
from common.stats import format_mean_se

from . import plots
from .evaluation import evaluate
from .models import TRANSFORMS
from .training import TrainConfig, train


def run_compare(datasets, transforms=TRANSFORMS, epochs: int = 500, out_dir="runs/pde/compare", device: str = "auto",
                checkpoint: str = "best.pt", command: str | None = None, **overrides) -> dict:
    """Train and evaluate every (dataset, transform); returns the report dict (with `rows`).

    Args:
        datasets: dataset files (`pde.load_dataset` formats).
        transforms: any of "fft", "dense", "monarch"; "monarch+channels" adds Monarch channel mixing.
        epochs, device: as in TrainConfig; **overrides: any other TrainConfig field (batch_size, lr,
            n_train, n_test, n_modes, hidden_channels, t_out, seed, resume, progress...).
        checkpoint: which checkpoint of each run is evaluated on the test split: "best.pt" (the epoch
            with the lowest validation error; the default) or "last.pt" (the model at the end of
            training, the paper's protocol).
        command: the command line that produced this report (recorded in it).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, started = [], time.perf_counter()
    for dataset in datasets:
        name = Path(dataset).stem
        for label in transforms:
            transform, channels = (label.split("+")[0], label.endswith("+channels"))
            run_dir = out_dir / name / label
            config = TrainConfig.from_dict({"dataset": str(dataset), "run_dir": str(run_dir), "transform": transform,
                                            "monarch_channels": channels, "epochs": epochs, "device": device,
                                            **overrides})
            train(config)
            report = evaluate(run_dir / checkpoint, out_dir=run_dir, device=device,
                              trust=overrides.get("trust_checkpoint", False))
            rows.append({"dataset": name, "transform": label, "rel_l2_mean": report["rel_l2_mean"],
                         "rel_l2_se": report["rel_l2_se"], "params": report["params"]["total"],
                         "transform_params": report["params"]["transform"], "epochs": report["epochs_trained"],
                         "rel_l2_per_step": report["rel_l2_per_step"],
                         "rel_l2_per_sample": report["rel_l2_per_sample"],
                         "train_seconds_per_epoch": report["train_seconds_per_epoch"],
                         "inference_samples_per_second": report["inference_samples_per_second"]})
    for row in rows:
        base = next((r for r in rows if r["dataset"] == row["dataset"] and r["transform"] == "fft"), None)
        row["ratio_to_fft"] = row["rel_l2_mean"] / base["rel_l2_mean"] if base else None
        row["param_overhead"] = row["params"] / base["params"] - 1 if base else None
    result = {"rows": rows, "datasets": [str(d) for d in datasets], "transforms": list(transforms), "epochs": epochs,
              "device": device, "checkpoint": checkpoint, "overrides": {k: v for k, v in overrides.items()},
              "command": command, "wall_seconds": time.perf_counter() - started}
    write_json_atomic(out_dir / "compare.json", result)
    write_text_atomic(out_dir / "compare.md", markdown(result))
    plots.comparison_bars(rows, out_dir / "compare.png")
    for name in {r["dataset"] for r in rows}:
        plots.error_vs_step({r["transform"]: r["rel_l2_per_step"] for r in rows if r["dataset"] == name},
                            out_dir / f"{name}_error_vs_step.png", title=name)
    return result


def markdown(result: dict) -> str:
    """The paper-style table: rows = transforms, columns = datasets."""
    rows = result["rows"]
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    labels = list(dict.fromkeys(r["transform"] for r in rows))
    cell = {(r["dataset"], r["transform"]): r for r in rows}
    lines = ["# FNO transform comparison (relative L2 over the predicted block, mean ± s.e.)", ""]
    if result.get("command"):
        lines += ["Command:", "", f"    {result['command']}", ""]
    lines += [f"Epochs: {result['epochs']}, device: {result['device']}, reported checkpoint: {result['checkpoint']}, "
              f"wall time {result['wall_seconds'] / 60:.1f} min.", ""]
    lines.append("| transform | " + " | ".join(names) + " |")
    lines.append("|---|" + "---|" * len(names))
    for label in labels:
        cells = []
        for name in names:
            r = cell.get((name, label))
            if r is None:
                cells.append("—")
                continue
            extra = "" if r["ratio_to_fft"] is None or label == "fft" else (
                f" (×{r['ratio_to_fft']:.2f} of FFT, params {r['param_overhead']:+.1%})")
            cells.append(f"{format_mean_se(r['rel_l2_mean'], r['rel_l2_se'])}{extra}")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| dataset | transform | params | transform params | s / epoch | inference samples / s |",
              "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['dataset']} | {r['transform']} | {r['params']:,} | {r['transform_params']:,} | "
                     f"{r['train_seconds_per_epoch']:.2f} | {r['inference_samples_per_second']:.1f} |")
    return "\n".join(lines) + "\n"
