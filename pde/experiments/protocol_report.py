"""The report of one or more protocol folders: `write_report(folders, stem) -> dict` (STEM.md/.json/.png).

Final runs of several folders merge by (method, seed) — each GPU run of `--preset gpu` adds a seed —
so the same seed in two folders is an error (it would count one training twice).

Per method: test relative L2 mean ± s.e. over seeds (each seed's value is the mean over test samples),
the ratio of mean errors to FFT with a 95 % two-level paired bootstrap interval
(`common.stats.compare_methods`: seeds resampled, then test samples within each seed; pairing by seed
and test sample over the seeds both methods have; a seed-level t-interval beside it),
error per predicted step, parameters, seconds per epoch (median over the run's epochs, mean over
seeds) and total training time measured in the same runs; the PNG shows validation error against
epochs and against training seconds, and test error per predicted step. The JSON keeps per-seed and
per-test-sample errors so that every interval can be recomputed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from common.errors import ConfigError, FormatError
from common.files import save_figure, write_json_atomic, write_text_atomic
from common.stats import compare_methods, format_mean_se, mean_se
from common.tables import markdown_table

METHOD_ORDER = ("fft", "dense", "monarch", "diag", "fft-more-modes", "fft-padded")
#: (A, B) pairs reported as ratio mean(A) / mean(B), besides every method against fft.
EXTRA_COMPARISONS = (("monarch", "dense"), ("monarch", "diag"), ("monarch", "fft-more-modes"),
                     ("monarch", "fft-padded"), ("dense", "fft-padded"))
GOAL_RATIO = 0.78  # the project's Navier–Stokes goal for Monarch against FFT


def collect_final(folders) -> dict[str, dict[int, dict]]:
    """{method: {seed: result.json}} of the final runs in the protocol folders."""
    found: dict[str, dict[int, dict]] = {}
    where: dict[tuple, Path] = {}
    for folder in map(Path, folders):
        if not (folder / "final").is_dir():
            raise FormatError(f"{folder}: no final/ folder; expected a protocol folder (run.py pde protocol --out)")
        for path in sorted((folder / "final").glob("*/seed*/result.json")):
            result = json.loads(path.read_text())
            key = (result["method"], int(result["seed"]))
            if key in where:
                raise ConfigError(f"seed {key[1]} of {key[0]} is in both {where[key]} and {path}; each merged folder "
                                  "must add other seeds", hint="rerun with other --seeds, or merge fewer folders")
            where[key] = path
            found.setdefault(result["method"], {})[key[1]] = result
    return found


def summarize(found: dict[str, dict[int, dict]]) -> dict:
    """Per-method statistics and the paired-bootstrap comparisons (see the module docstring)."""
    methods = {}
    for method in sorted(found, key=lambda m: METHOD_ORDER.index(m) if m in METHOD_ORDER else 99):
        seeds = sorted(found[method])
        runs = [found[method][s] for s in seeds]
        per_seed = [r["test"]["rel_l2_mean"] for r in runs]
        mean, se = mean_se(per_seed)
        methods[method] = {
            "seeds": seeds, "test_rel_l2_per_seed": per_seed, "test_rel_l2_mean": mean, "test_rel_l2_se": se,
            "test_rel_l2_per_sample": [r["test"]["rel_l2_per_sample"] for r in runs],
            "test_rel_l2_per_step": np.mean([r["test"]["rel_l2_per_step"] for r in runs], axis=0).tolist(),
            "test_rel_l2_per_step_per_seed": [r["test"]["rel_l2_per_step"] for r in runs],
            "selected_epoch_per_seed": [r["test"]["epoch"] for r in runs],
            "best_val_rel_l2_per_seed": [r["best_val_rel_l2"] for r in runs],
            "params": runs[0].get("params"), "n_modes": runs[0].get("n_modes"), "setting": runs[0]["point"],
            "seconds_per_epoch": float(np.mean([r["seconds_per_epoch"] for r in runs])),
            "train_seconds_per_seed": [r["train_seconds"] for r in runs],
            "epochs": runs[0]["train_config"]["epochs"],
            "curves": {str(s): [{k: c[k] for k in ("epoch", "val_rel_l2", "seconds")} for c in r["curve"]]
                       for s, r in zip(seeds, runs)},
            "device": runs[0]["train_config"].get("device"),
        }
    pairs = [(m, "fft") for m in methods if m != "fft"] + list(EXTRA_COMPARISONS)
    comparisons = []
    for a, b in pairs:
        if a not in methods or b not in methods:
            continue
        common = sorted(set(methods[a]["seeds"]) & set(methods[b]["seeds"]))
        if not common:
            continue
        arrays = [np.array([found[m][s]["test"]["rel_l2_per_sample"] for s in common]) for m in (a, b)]
        if arrays[0].shape != arrays[1].shape:
            raise FormatError(f"{a} and {b} were tested on different numbers of samples ({arrays[0].shape} vs "
                              f"{arrays[1].shape}); merge only folders with the same test split")
        per_seed = (arrays[0].mean(axis=1) / arrays[1].mean(axis=1)).tolist()
        comparisons.append({"a": a, "b": b, "seeds": common, "per_seed_ratio": per_seed,
                            **compare_methods(arrays[0], arrays[1], "ratio")})
    return {"methods": methods, "comparisons": comparisons}


def verdict(comparison: dict) -> str:
    """One sentence on a ratio interval."""
    a, b, low, high = comparison["a"], comparison["b"], comparison["low"], comparison["high"]
    seeds = comparison.get("per_seed_ratio", [])
    agree = (f"; {'every' if all(r < 1 for r in seeds) else 'not every'} seed has A < B" if high < 1 else
             f"; {'every' if all(r > 1 for r in seeds) else 'not every'} seed has A > B" if low > 1 else "")
    if high < 1:
        return f"{a} better: the paired interval excludes 1{agree}"
    if low > 1:
        return f"{a} worse: the paired interval excludes 1{agree}"
    return f"no difference between {a} and {b} (the interval contains 1)"


def _tuning_section(tuning: dict) -> list[str]:
    lines = [f"Tuning: every point trained {tuning['epochs']} epochs (seed of the tuning runs: see protocol.json), "
             f"score = {tuning['score']}.", ""]
    rows = []
    for method, points in tuning["points"].items():
        chosen = tuning["chosen"][method]
        for p in points:
            setting = ", ".join(f"{k}={v}" for k, v in p["point"].items())
            mark = " **(chosen)**" if p["point"] == chosen else ""
            rows.append([method, setting + mark, f"{p['best_val_rel_l2']:.4f}", p["best_epoch"],
                         f"{p['seconds_per_epoch']:.2f}"])
        for p in tuning.get("failed", {}).get(method, []):
            setting = ", ".join(f"{k}={v}" for k, v in p["point"].items())
            rows.append([method, setting, "failed (diverged; see its log.txt)", "—", "—"])
    lines.append(markdown_table(["method", "grid point", "best validation rel. L2", "at epoch", "s / epoch"], rows))
    return lines


def markdown(report: dict, notes: str | None = None) -> str:
    methods, comparisons = report["summary"]["methods"], report["summary"]["comparisons"]
    protocol = report["protocols"][0] if report["protocols"] else {}
    lines = [f"# FNO transform protocol: {report['title']}", ""]
    if report.get("commands"):
        lines += ["Commands:", ""] + [f"    {c}" for c in report["commands"] if c] + [""]
    split = protocol.get("split", {})
    config = protocol.get("config", {})
    if split:
        lines += [f"Split: {split['n_train']} train / {split['n_val']} validation (held out of the training block) / "
                  f"{split['n_test']} test. Checkpoint (best.pt) and every setting chosen on validation; the test "
                  f"split read once, by each selected checkpoint.", ""]
    if config:
        lines += [f"Final runs: {config.get('epochs')} epochs, batch {config.get('batch_size')}, Adam, StepLR(step = "
                  f"{config.get('step_fraction')} × epochs, γ = {config.get('gamma')}); device "
                  f"{next(iter(methods.values()))['device'] if methods else '?'}.", ""]
    env = protocol.get("environment")
    if env:
        lines += [f"Environment: {env.get('device')}, torch {env.get('torch')}, neuraloperator {env.get('neuralop')}, "
                  f"load average {env.get('load_average_1min')} at the start (a shared machine: seconds are "
                  f"comparable within this report only).", ""]
    if report["tunings"] and config:
        axis = config.get("monarch_axis")
        lines += [f"Equal tuning budget: {len(report['tunings'][0]['grid'].get('fft', []))} points per transform, "
                  f"{report['tunings'][0]['epochs']} epochs each (StepLR at the same fraction of the run). "
                  f"fft = lr {config.get('lrs')} × weight decay {config.get('weight_decays')} (it has no transform "
                  f"parameters); dense, monarch, diag = lr {config.get('lrs')} × transform lr "
                  f"{config.get('transform_lrs')} at weight decay {config.get('weight_decay')}. Monarch block sizes: "
                  + (f"tuned within Monarch's budget ({axis})." if axis else
                     f"{config.get('monarch_sizes') or 'the default (most square) factorisation'}, not tuned."), ""]
    for tuning in report["tunings"]:
        lines += _tuning_section(tuning)
    if report.get("more_modes"):
        mm = report["more_modes"]
        lines += [f"fft-more-modes: n_modes {tuple(mm['n_modes'])} (default {tuple(mm['default_n_modes'])}), "
                  f"{mm['params']:,} parameters vs Monarch's {mm['monarch_params']:,}; rule: {mm['rule']}; it uses "
                  f"FFT's tuned settings.", ""]
    rows = []
    fft = methods.get("fft")
    ratio = {c["a"]: c for c in comparisons if c["b"] == "fft"}
    for name, m in methods.items():
        c = ratio.get(name)
        ratio_text = "1" if name == "fft" else (f"{c['estimate']:.3f} [{c['low']:.3f}, {c['high']:.3f}]" if c else "—")
        params = m["params"] or {}
        rows.append([name, len(m["seeds"]), format_mean_se(m["test_rel_l2_mean"], m["test_rel_l2_se"]), ratio_text,
                     f"{params.get('total', 0):,}", f"{params.get('transform', 0):,}", f"{m['seconds_per_epoch']:.2f}",
                     f"{np.mean(m['train_seconds_per_seed']):.0f}",
                     ", ".join(f"{k}={v}" for k, v in m["setting"].items())])
    lines += ["## Test error", "",
              "Relative L2 over the predicted block, mean ± s.e. over seeds; ratio = mean error / FFT's mean error "
              "with its 95 % two-level paired bootstrap interval (seeds, then test samples within a seed).", ""]
    lines.append(markdown_table(["method", "seeds", "test rel. L2", "ratio to FFT [95 % CI]", "params",
                                 "transform params", "s / epoch", "train s (mean)", "setting"], rows))
    lines += ["## Comparisons (two-level paired bootstrap, 10 000 resamples; seed-level t-interval beside it)", ""]
    lines += ["The interval resamples seeds, then test samples within each drawn seed (training noise and "
              "test-set noise both count); its arms are widened for the number of seeds "
              "(`common.stats.small_sample_factor`). The t-interval is over the per-seed ratios.", ""]
    lines.append(markdown_table(["A / B", "ratio", "95 % interval", "seed t-interval", "seeds", "per-seed ratios",
                                 "verdict"],
                                [[f"{c['a']} / {c['b']}", f"{c['estimate']:.3f}", f"[{c['low']:.3f}, {c['high']:.3f}]",
                                  f"[{c['t_interval']['low']:.3f}, {c['t_interval']['high']:.3f}]", c["n_seeds"],
                                  ", ".join(f"{r:.3f}" for r in c.get("per_seed_ratio", [])), verdict(c)]
                                 for c in comparisons]))
    goal = next((c for c in comparisons if (c["a"], c["b"]) == ("monarch", "fft")), None)
    if goal:
        met = goal["estimate"] <= GOAL_RATIO and goal["high"] < 1
        lines += [f"Goal (Monarch test error ≤ {GOAL_RATIO} × the equally tuned FFT FNO, 95 % interval excluding 1): "
                  f"**{'met' if met else 'not met'}** — ratio {goal['estimate']:.3f} [{goal['low']:.3f}, "
                  f"{goal['high']:.3f}].", ""]
    steps = max((len(m["test_rel_l2_per_step"]) for m in methods.values()), default=0)
    if steps > 1:
        lines += ["## Error per predicted step (mean over seeds)", ""]
        lines.append(markdown_table(["method"] + [f"step {i + 1}" for i in range(steps)],
                                    [[n] + [f"{v:.4f}" for v in m["test_rel_l2_per_step"]] for n, m in methods.items()]))
    lines += ["## Per seed", ""]
    lines.append(markdown_table(["method", "seed", "test rel. L2", "best val rel. L2", "selected epoch", "train s"],
                                [[n, s, f"{t:.4f}", f"{v:.4f}", e, f"{ts:.0f}"] for n, m in methods.items()
                                 for s, t, v, e, ts in zip(m["seeds"], m["test_rel_l2_per_seed"],
                                                           m["best_val_rel_l2_per_seed"], m["selected_epoch_per_seed"],
                                                           m["train_seconds_per_seed"])]))
    if fft is None:
        lines += ["(no FFT runs: no ratios)", ""]
    lines += [f"Learning curves and per-step errors: `{report['png']}`. Per-seed, per-test-sample errors: "
              f"`{report['json']}`.", ""]
    if notes:
        lines += ["## Discussion", "", notes.strip(), ""]
    return "\n".join(lines)


def plot(summary: dict, path: Path, title: str = "") -> Path:
    """Validation error vs epoch and vs training seconds (mean over seeds), test error per step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for name, m in summary["methods"].items():
        curves = list(m["curves"].values())
        length = min(len(c) for c in curves)
        epochs = [c["epoch"] + 1 for c in curves[0][:length]]
        val = np.mean([[c["val_rel_l2"] for c in curve[:length]] for curve in curves], axis=0)
        seconds = np.mean([[c["seconds"] for c in curve[:length]] for curve in curves], axis=0)
        axes[0].plot(epochs, val, label=name)
        axes[1].plot(seconds, val, label=name)
        steps = m["test_rel_l2_per_step"]
        axes[2].plot(range(1, len(steps) + 1), steps, marker="o", ms=3, label=name)
    one_step = all(len(m["test_rel_l2_per_step"]) == 1 for m in summary["methods"].values())
    if one_step:  # one-shot problems (Darcy): test error per method, mean ± s.e. over seeds
        axes[2].clear()
        names = list(summary["methods"])
        means = [summary["methods"][n]["test_rel_l2_mean"] for n in names]
        errors = [np.nan_to_num(summary["methods"][n]["test_rel_l2_se"]) for n in names]
        axes[2].bar(range(len(names)), means, yerr=errors, color=[f"C{i}" for i in range(len(names))], capsize=3)
        axes[2].set_xticks(range(len(names)), names, rotation=30, ha="right")
    for ax, xlabel, ylabel in zip(axes, ("epoch", "training seconds (same run)", "" if one_step else "predicted step"),
                                  ("validation rel. L2 (mean over seeds)", "validation rel. L2",
                                   "test rel. L2 (mean ± s.e. over seeds)" if one_step else "test rel. L2")):
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path


def write_report(folders, stem, command: str | None = None, notes: str | None = None, title: str | None = None) -> dict:
    """Summarise the final runs of the protocol folders into STEM.md, STEM.json and STEM.png."""
    folders = [Path(f) for f in folders]
    stem = Path(stem)
    found = collect_final(folders)
    if not found:
        raise FormatError(f"no finished final runs under {[str(f) for f in folders]}")
    protocols = [json.loads((f / "protocol.json").read_text()) for f in folders if (f / "protocol.json").is_file()]
    tunings = [json.loads((f / "tuning.json").read_text()) for f in folders if (f / "tuning.json").is_file()]
    more = next((json.loads((f / "more_modes.json").read_text()) for f in folders if (f / "more_modes.json").is_file()),
                None)
    summary = summarize(found)
    png, json_path, md = (Path(f"{stem}.{ext}") for ext in ("png", "json", "md"))
    title = title or Path(protocols[0]["config"]["dataset"]).stem if protocols else (title or "")
    report = {"title": title, "folders": [str(f) for f in folders], "commands": [p.get("command") for p in protocols],
              "protocols": protocols, "tunings": tunings, "more_modes": more, "summary": summary,
              "json": json_path.name, "png": png.name, "report_command": command}
    write_json_atomic(json_path, report)
    plot(summary, png, title)
    write_text_atomic(md, markdown(report, notes))
    return report
