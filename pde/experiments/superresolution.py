"""Zero-shot super-resolution study: models trained at one grid, evaluated at several without retraining.

The FNO paper trains at 64² and evaluates at 256². A learnable-transform FNO is moved to each evaluation
grid with `transfer.load_for_dataset` (band-limited resampling of its learned transforms; Monarch factors
re-projected, residual recorded). The evaluation data are the same trajectories stored at every
resolution (generated at the finest one and subsampled, as the FNO data are made), so errors at
different grids compare like with like.

`run_superresolution(runs, datasets, out)` writes <stem>.json (per transform, grid, seed and test
sample), <stem>.md (table, goal check, residuals per layer), <stem>.png (error against grid) and
<stem>_fields.png (predicted vs true vorticity at the finest grid).
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from common.device import resolve_device
from common.environment import describe_environment
from common.errors import ConfigError, RunExistsError
from common.files import save_figure, write_json_atomic, write_text_atomic
from common.stats import compare_methods, format_mean_se, mean_se
from common.tables import markdown_table

from .problems import relative_l2_per_sample
from .training import predict
from .transfer import load_for_dataset


def evaluate_at_grids(checkpoint, datasets: list, device: str = "cpu", batch_size: int = 10) -> dict:
    """Per-test-sample relative L2 of one checkpoint on each dataset (at that dataset's grid).

    Returns {grid_label: {"per_sample": [...], "residuals": {layer: [...]}, "last_frame": (S, S) of test
    sample 0 (prediction), "true_last_frame": (S, S)}} with grid_label like "64x64".
    """
    found = {}
    for dataset in datasets:
        setup, _, _, residuals = load_for_dataset(checkpoint, dataset, grid=None, device=device,
                                                       allow_resize=True)
        test = setup["test"]
        pred = predict(setup["predictor"], test.x, resolve_device(device), batch_size)
        label = "x".join(str(s) for s in setup["grid"])
        found[label] = {"per_sample": relative_l2_per_sample(pred, test.y).tolist(), "residuals": residuals,
                        "last_frame": pred[0, -1].numpy(), "true_last_frame": test.y[0, -1].numpy()}
    return found


def summarize(results: dict) -> dict:
    """results[transform][seed] = evaluate_at_grids(...) → per transform and grid: mean ± s.e. over seeds
    of the per-seed mean error, the per-seed per-sample matrix, and the maximum projection residual."""
    summary = {}
    for transform, seeds in results.items():
        grids = list(next(iter(seeds.values())))
        summary[transform] = {}
        for grid in grids:
            per_seed = [float(np.mean(seeds[s][grid]["per_sample"])) for s in sorted(seeds)]
            mean, se = mean_se(per_seed)
            residuals = [r for s in seeds for layer in seeds[s][grid]["residuals"].values() for r in layer]
            summary[transform][grid] = {
                "mean": mean, "se": se, "per_seed": per_seed,
                "per_seed_per_sample": [seeds[s][grid]["per_sample"] for s in sorted(seeds)],
                "max_projection_residual": max(residuals) if residuals else 0.0,
                "residuals_by_seed": {str(s): seeds[s][grid]["residuals"] for s in sorted(seeds)}}
    return summary


def ratios_to_fft(summary: dict) -> dict:
    """{transform: {grid: two-level paired bootstrap of error / FFT's error}} (seeds, then test samples; the same
    seeds and samples at every grid, so intervals at different grids compare like with like)."""
    if "fft" not in summary:
        return {}
    return {transform: {grid: compare_methods(values["per_seed_per_sample"],
                                              summary["fft"][grid]["per_seed_per_sample"], "ratio")
                        for grid, values in by_grid.items()}
            for transform, by_grid in summary.items() if transform != "fft"}


def goal_check(summary: dict, train_grid: str, eval_grid: str) -> dict | None:
    """The issue's goal: Monarch at `eval_grid` no worse than FFT there, and keeping at least half of
    its own advantage over FFT at the training grid (advantage = 1 − error_monarch / error_fft)."""
    if "monarch" not in summary or "fft" not in summary or eval_grid not in summary["fft"]:
        return None
    fft, mon = summary["fft"], summary["monarch"]
    adv_train = 1 - mon[train_grid]["mean"] / fft[train_grid]["mean"]
    adv_eval = 1 - mon[eval_grid]["mean"] / fft[eval_grid]["mean"]
    return {"train_grid": train_grid, "eval_grid": eval_grid, "advantage_at_train_grid": adv_train,
            "advantage_at_eval_grid": adv_eval,
            "no_worse_than_fft": bool(mon[eval_grid]["mean"] <= fft[eval_grid]["mean"]),
            "keeps_half_the_advantage": bool(adv_train > 0 and adv_eval >= 0.5 * adv_train)}


def markdown(report: dict) -> str:
    summary, grids = report["summary"], report["grids"]
    lines = [f"# Zero-shot super-resolution: trained at {report['train_grid']}, evaluated at {', '.join(grids)}", "",
             "Relative L2 over the predicted block, mean ± s.e. over seeds (each seed: mean over the test "
             "samples); ratio to the FFT FNO at the same grid with its 95 % two-level paired bootstrap interval "
             "(seeds, then test samples within a seed). No retraining: learned transforms are resampled to each grid "
             "(`LearnableDFT.resized`).", ""]
    header = (["transform"] + [f"{g}" for g in grids] + [f"{g} / fft [95 % CI]" for g in grids]
              + ["max Monarch residual"])
    rows = []
    for transform, by_grid in summary.items():
        cells = [format_mean_se(by_grid[g]["mean"], by_grid[g]["se"]) for g in grids]
        ratios = [_ratio_text(report["ratios"].get(transform, {}).get(g)) for g in grids]
        residual = max(by_grid[g]["max_projection_residual"] for g in grids)
        rows.append([transform] + cells + ratios + [f"{residual:.2e}"])
    lines.append(markdown_table(header, rows))
    goal = report.get("goal")
    if goal:
        lines += ["## Goal", "",
                  f"Monarch's advantage over FFT (1 − error ratio): {goal['advantage_at_train_grid']:+.1%} at "
                  f"{goal['train_grid']}, {goal['advantage_at_eval_grid']:+.1%} at {goal['eval_grid']}. "
                  f"No worse than FFT at {goal['eval_grid']}: **{'yes' if goal['no_worse_than_fft'] else 'no'}**; "
                  f"keeps at least half of its advantage: **{'yes' if goal['keeps_half_the_advantage'] else 'no'}**.", ""]
    lines += ["## Projection residuals per layer (seed of the first run, each evaluation grid)", "",
              "Relative Frobenius residual of each resized Monarch transform (forward per axis, then inverse "
              "per axis) after re-projection onto Monarch form; 0 for dense / diag / FFT.", ""]
    for transform, by_grid in summary.items():
        if by_grid[grids[0]]["max_projection_residual"] == 0 and all(
                by_grid[g]["max_projection_residual"] == 0 for g in grids):
            continue
        for grid in grids:
            first = next(iter(by_grid[grid]["residuals_by_seed"].values()))
            for layer, values in first.items():
                lines.append(f"- {transform} @ {grid}, `{layer}`: " + ", ".join(f"{v:.2e}" for v in values))
    if report.get("notes"):
        lines += ["", report["notes"]]
    lines += ["", "Command:", "", f"    {report['command']}", "",
              f"Environment: {report['environment']['device']}, torch {report['environment']['torch']}, "
              f"wall time {report['wall_seconds']:.0f} s.", ""]
    return "\n".join(lines)


def _ratio_text(interval: dict | None) -> str:
    if interval is None:
        return "1"
    return f"{interval['estimate']:.3f} [{interval['low']:.3f}, {interval['high']:.3f}]"


def plot(report: dict, fields: dict, path: Path, fields_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summary, grids = report["summary"], report["grids"]
    sizes = [int(g.split("x")[0]) for g in grids]
    fig, ax = plt.subplots(figsize=(5, 3.6))
    for transform, by_grid in summary.items():
        ax.errorbar(sizes, [by_grid[g]["mean"] for g in grids],
                    yerr=[0 if np.isnan(by_grid[g]["se"]) else by_grid[g]["se"] for g in grids],
                    marker="o", capsize=3, label=transform)
    ax.set_xscale("log", base=2)
    ax.set_xticks(sizes, grids)
    ax.axvline(int(report["train_grid"].split("x")[0]), color="grey", ls=":", lw=1)
    ax.set_xlabel("evaluation grid (trained at the dotted line)")
    ax.set_ylabel("test relative L2")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    save_figure(fig, path, dpi=120)

    panels = [("true", fields["true"])] + [(t, f) for t, f in fields.items() if t != "true"]
    lim = float(np.abs(fields["true"]).max())
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9))
    for ax, (name, field) in zip(np.atleast_1d(axes), panels):
        image = ax.imshow(field, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(name)
        ax.axis("off")
    fig.colorbar(image, ax=list(np.atleast_1d(axes)), shrink=0.8)
    fig.suptitle(f"last predicted vorticity frame, test sample 0, at {grids[-1]} (trained at {report['train_grid']})")
    save_figure(fig, fields_path, dpi=110)


def run_superresolution(runs: dict[str, list], datasets: list, out_dir, stem: str = "pde_superresolution",
                        device: str = "cpu", command: str | None = None, notes: str | None = None,
                        overwrite: bool = False) -> dict:
    """runs: {transform label: [checkpoint per seed]} (all trained at the grid of datasets[0]);
    datasets: the same trajectories at increasing resolution, the training resolution first."""
    out_dir = Path(out_dir)
    outputs = [out_dir / f"{stem}{suffix}" for suffix in (".json", ".md", ".png", "_fields.png")]
    if not overwrite and any(p.exists() for p in outputs):
        raise RunExistsError(f"{out_dir}/{stem}.* exist", hint="pass --overwrite to replace them")
    if not runs or not datasets:
        raise ConfigError("need at least one run (LABEL=CHECKPOINT[,CHECKPOINT…]) and one dataset")
    from tqdm import tqdm

    started, results, fields = time.perf_counter(), {}, {}
    jobs = [(label, seed, ckpt) for label, ckpts in runs.items() for seed, ckpt in enumerate(ckpts)]
    for label, seed, checkpoint in tqdm(jobs, desc="super-resolution: evaluating checkpoints"):
        found = evaluate_at_grids(checkpoint, datasets, device)
        finest = list(found)[-1]
        if seed == 0:
            fields.setdefault("true", found[finest]["true_last_frame"])
            fields[label] = found[finest]["last_frame"]
        results.setdefault(label, {})[seed] = {g: {k: v for k, v in r.items() if "frame" not in k}
                                               for g, r in found.items()}
    summary = summarize(results)
    grids = list(next(iter(summary.values())))
    report = {"train_grid": grids[0], "grids": grids, "summary": summary, "ratios": ratios_to_fft(summary),
              "checkpoints": {k: [str(c) for c in v] for k, v in runs.items()},
              "datasets": [str(d) for d in datasets], "goal": goal_check(summary, grids[0], grids[min(1, len(grids) - 1)]),
              "command": command or "", "notes": notes, "environment": describe_environment(device),
              "wall_seconds": time.perf_counter() - started}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(outputs[0], report)
    write_text_atomic(outputs[1], markdown(report))
    plot(report, fields, outputs[2], outputs[3])
    return report


def parse_runs(items: list[str]) -> dict[str, list[Path]]:
    """["monarch=runs/a/best.pt,runs/b/best.pt", ...] → {"monarch": [Path, Path]}."""
    runs = {}
    for item in items:
        label, sep, paths = item.partition("=")
        if not sep or not paths:
            raise ConfigError(f"--run {item!r}: expected LABEL=CHECKPOINT[,CHECKPOINT…]")
        runs[label] = [Path(p) for p in paths.split(",")]
    return runs


def command_from_args(args) -> dict:
    import sys

    notes = Path(args.notes).read_text() if args.notes else None
    report = run_superresolution(parse_runs(args.run), args.datasets, args.out, args.stem, args.device,
                                 command=" ".join(["python"] + sys.argv), notes=notes, overwrite=args.overwrite)
    print(markdown(report))
    print(f"Report: {Path(args.out) / args.stem}.md")
    return report
