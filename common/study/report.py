"""The one report writer of every study: markdown, JSON and a figure from a results document
(`common.study.results.collect`), so a report can be regenerated from its JSON alone
(`write_report(json.load(...), ...)`).

The markdown states what a reader needs to trust a comparison: per cell the methods' test metric (mean
over seeds ± standard error over seeds), parameters, seconds per epoch, the chosen point with its
bracketing, the tuning trials, and how many final runs converged by the spec's rule; then each comparison
with its two-level 95 % interval (and the seed-level t-interval beside it), the published baselines
and everything still missing, unbracketed or unconverged. The figure: median validation curves per
method and cell, and the comparisons' intervals.
"""
from __future__ import annotations

import math
from pathlib import Path

from common.files import save_figure, write_json_atomic, write_text_atomic
from common.stats import format_interval, format_mean_se


def _fmt(value, digits=4):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _value_text(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _params_text(chosen: dict | None) -> str:
    return ", ".join(f"{k} {_value_text(v)}" for k, v in (chosen or {}).items()) or "–"


def _range_text(name: str, value) -> str:
    """[low, high] of a range, {a, b, …} of a categorical knob's choices (common.study.tuning)."""
    if isinstance(value, dict):
        return f"{name} {{{', '.join(map(_value_text, value['choices']))}}}"
    return f"{name} [{value[0]:.3g}, {value[1]:.3g}]"


def _parameters_text(info: dict) -> str:
    p = info.get("parameters")
    if isinstance(p, dict):
        total, transform = p.get("total"), p.get("transform")
        return f"{total:,}" + (f" ({transform:,} transform)" if transform else "") if total is not None else "–"
    return f"{p:,}" if isinstance(p, int) else "–"


def markdown(results: dict, command: str | None = None, tuning_figure: str | None = None) -> str:
    spec = results["spec"]
    metric = spec["metric"]
    status = results["status"]
    lines = [f"# Study `{results['study']}` ({results['application']})", ""]
    tuning_now = status.get("tuning_in_progress", [])
    if not status["complete"]:
        lines += [f"**Partial result**: {len(status['missing'])} final run(s) not finished "
                  f"({', '.join(status['missing'][:6])}{' …' if len(status['missing']) > 6 else ''})"
                  + (f"; tuning still under way in cell(s) {', '.join(f'`{c}`' for c in tuning_now)}, whose "
                     "chosen points are each method's best trial so far, not a choice" if tuning_now else "")
                  + ". Rerun the study's command to resume.", ""]
    env = results.get("environment", {})
    lines += [f"Created {results['created']}; Python {env.get('python')}, torch {env.get('torch')}, "
              f"{env.get('machine')}, device `{spec['device']}`, {spec['threads']} thread(s) per run.", ""]
    if command:
        lines += ["Reproduce:", "", "```", command, "```", ""]
    t, s = spec["tuning"], spec["stopping"]
    sched = spec["schedule"]
    tuned = any(m["knobs"] and not m["settings_from"] for m in spec["methods"])
    tuning_line = (f"- Tuning: {t['trials']} Optuna trials per tuned method (TPE, {t['pruner']} pruning from epoch "
                   f"{t['min_epochs']}, ≤ {t['epochs']} epochs each); a choice in the outer {t['edge']:.0%} (log "
                   f"scale) of its range widens it by a decade with {t['extra_trials']} more trials for every method "
                   f"(≤ {t['max_widenings']} times). Selection on validation only. Trials (pruned) count the finished "
                   "trials, the budget; \"+ n failed\" are trials a kill interrupted (their parameters ran again) "
                   "or that raised, not counted." if tuned else
                   "- No tuning: every method runs at the same fixed options (an untuned comparison; the tuned, "
                   "equal-budget one is `run.py <application> study`).")
    lines += ["## Design", "",
              f"- Final seeds {list(spec['seeds'])}; tuning seed {spec['tune_seed']} (never a final seed).",
              tuning_line,
              f"- Schedule: {sched['kind']}" + (f" (×{sched['gamma']} every {sched['step_epochs']} epochs)"
                                                if sched["kind"] == "step" else "") +
              f"; final runs stop when the best validation metric gained < {s['min_gain']:.0%} over the last "
              f"{s['window']:.0%} of the epochs (from epoch {s['min_epochs']}"
              + (f", and once the learning rate is ≤ {s.get('min_lr_factor', 0.1):g} of its peak"
                 if sched["kind"] != "constant" else "")
              + f"), or at {s['max_epochs']} epochs (not converged).",
              f"- Intervals: two-level paired bootstrap (seeds, then test samples within a seed), 95 %, arms "
              "widened by the small-sample factor; seed-level t-interval beside it.", ""]
    if spec.get("notes"):
        lines += [spec["notes"], ""]
    if tuning_figure:
        lines += [f"Every tuning trial against each knob, with the chosen points and the edge bands: "
                  f"[{tuning_figure}]({tuning_figure}).", ""]
    for label, cell in results["cells"].items():
        lines += [f"## Cell `{label}`", ""]
        in_progress = cell.get("tuning") == "in progress"
        if in_progress:
            lines += [f"Tuning in progress (round {cell.get('widenings', 0)}: {cell.get('tuning_target')} finished "
                      "trials per method): the chosen points and their bracketing are provisional.", ""]
        if cell.get("ranges"):
            lines += ["Search ranges (after widening): " + ", ".join(
                _range_text(k, v) for k, v in cell["ranges"].items()) +
                f"; widenings: {cell.get('widenings', 0)}.", ""]
        lines += [f"| method | test {metric} | parameters | FLOPs / sample | s/epoch | chosen point | bracketing | "
                  "trials (pruned) | converged |", "|---|---|---|---|---|---|---|---|---|"]
        for name, m in cell["methods"].items():
            summ = m["summary"].get(metric)
            if not summ:
                value = "–"
            elif m["trained"]:
                n = summ["n_seeds"]
                value = format_mean_se(summ["mean"], summ["se"]).replace(" (n=1)", "") + f" ({n} seed{'s' * (n > 1)})"
            else:
                value = f"{summ['mean']:.4f} (deterministic)"
            if m["settings_from"]:
                bracket = f"point of {m['settings_from']}"
            elif not m["chosen"]:
                bracket = "fixed (untuned)"
            else:
                bracket = ", ".join(f"{k}: {v}" for k, v in m["bracketing"].items()) or "–"
            conv = m["converged"]
            conv_text = (f"{conv['converged']}/{conv['runs']}" if conv and conv["runs"] else "–" if conv
                         else "no training")
            trials = m["trials"]
            trial_text = f"{trials['total']} ({trials['pruned']})" if trials["total"] else "–"
            if trials.get("failed"):
                trial_text += f" + {trials['failed']} failed"
            if in_progress and not m["settings_from"] and m["chosen"]:
                bracket = f"so far: {bracket}"
                trial_text += f" of {cell.get('tuning_target')}"
            flops = m["info"].get("flops")
            lines.append(f"| {m['label']} | {value} | {_parameters_text(m['info'])} | "
                         f"{format(flops, '.3g') if flops else '–'} | {_fmt(m['seconds_per_epoch'], 3)} | "
                         f"{_params_text(m['chosen'])} | {bracket} | {trial_text} | {conv_text} |")
        lines.append("")
        metrics = sorted({k for m in cell["methods"].values() for k in m["summary"]} - {metric})
        if metrics:  # e.g. the zero-shot errors at other grids, SSIM beside PSNR
            lines += ["| method | " + " | ".join(f"test {k}" for k in metrics) + " |",
                      "|---|" + "---|" * len(metrics)]
            for m in cell["methods"].values():
                cells = [format_mean_se(m["summary"][k]["mean"], m["summary"][k]["se"]).replace(" (n=1)", "")
                         if k in m["summary"] else "–" for k in metrics]
                lines.append(f"| {m['label']} | " + " | ".join(cells) + " |")
            lines.append("")
        comps = [c for c in cell["comparisons"] if c["result"]]
        if comps:
            what = "ratio of means" if spec["statistic"] == "ratio" else "difference of means"
            lines += [f"| comparison ({what}) | metric | two-level 95 % | seed t-interval | seeds × samples | goal |",
                      "|---|---|---|---|---|---|"]
            for c in comps:
                r = c["result"]
                goal = "–" if c["goal"] is None else f"{c['goal']:g}: {'met' if c['goal_met'] else 'not met'}"
                t_text = format_interval(r["t_interval"])
                if r["n_seeds"] < 2:  # no seed-level interval exists; say what the bootstrap one holds
                    deterministic = not any(cell["methods"][n]["trained"] for n in (c["method"], c["baseline"])
                                            if n in cell["methods"])
                    goal += (" (deterministic methods: the interval is over test samples)" if deterministic
                             else " (one seed: the interval holds test-sample noise only)")
                    t_text = "–"
                lines.append(f"| {c['method']} vs {c['baseline']} | {c['metric']} | {format_interval(r)} | "
                             f"{t_text} | {r['n_seeds']} × {r['n_samples']} | {goal} |")
            lines.append("")
        for p in cell["published"]:
            if p["measured"] is None:
                continue
            verdict = "within" if p["within"] else "NOT within"
            lines += [f"Published {p['method']}: {p['published']:g} ({p['source']}); measured {p['measured']:.4g}, "
                      f"{p['ratio']:.2f}× — {verdict} {p['tolerance']:.0%}.", ""]
    problems = ([f"tuning of cell `{c}` not finished" for c in tuning_now]
                + ([f"{len(status['missing'])} final run(s) not finished"] if status["missing"] else [])
                + status["unbracketed"] + [f"{u}: not every final run converged" for u in status["not_converged"]])
    lines += ["## What does not hold yet", ""]
    lines += [f"- {p}" for p in problems] or ["- Every tuned choice is interior and every final run converged."]
    lines.append("")
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Median validation curve per method against epochs and against training seconds (one column per
    cell; left out when no method trains), and the comparisons' intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cells = results["cells"]
    # a study of untrained methods only (classical baselines) has no curves: its figure is the intervals
    curves = any(r["curve"] for cell in cells.values() for m in cell["methods"].values() for r in m["runs"])
    n_rows = 3 if curves else 1
    fig, axes = plt.subplots(n_rows, max(1, len(cells)), figsize=(5 * max(1, len(cells)), 10 if curves else 4),
                             squeeze=False)
    for column, (label, cell) in enumerate(cells.items()):
        for row, axis in ((0, "epoch"), (1, "training seconds")) if curves else ():
            ax = axes[row, column]
            for name, m in cell["methods"].items():
                runs = [r for r in m["runs"] if r["curve"]]
                if not runs:
                    continue
                n = min(len(r["curve"]) for r in runs)
                x = (np.arange(1, n + 1) if row == 0 else  # seconds: the median run's clock
                     np.median([r.get("elapsed", [])[:n] or list(range(1, n + 1)) for r in runs], axis=0))
                ax.plot(x, np.median([r["curve"][:n] for r in runs], axis=0), label=m["label"])
            ax.set(title=f"{label}: validation (median over seeds)", xlabel=axis, yscale="log")
            if ax.lines:
                ax.legend(fontsize=7)
        ax = axes[n_rows - 1, column]
        comps = [c for c in cell["comparisons"] if c["result"]]
        for i, c in enumerate(comps):
            r = c["result"]
            ax.errorbar(r["estimate"], i, xerr=[[r["estimate"] - r["low"]], [r["high"] - r["estimate"]]], fmt="o")
        ax.axvline(1.0 if results["spec"]["statistic"] == "ratio" else 0.0, color="grey", lw=0.8)
        ax.set_yticks(range(len(comps)), [f"{c['method']} vs {c['baseline']}" for c in comps], fontsize=7)
        ax.set(title=f"{label}: two-level 95 % intervals", xlabel=results["spec"]["statistic"])
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def _tuned_knobs(cell: dict) -> list[str]:
    """The knobs some method of the cell tuned over a numeric range, in the cell's range order."""
    return [k for k, v in (cell.get("ranges") or {}).items() if not isinstance(v, dict)
            and any(k in t["params"] for m in cell["methods"].values() for t in m.get("trial_points", []))]


def plot_tuning(results: dict, path: Path) -> bool:
    """Where the tuning looked and what it chose: per cell (column) and numeric knob (row) every finished
    trial's validation value against the knob (filled: complete, hollow: pruned), the chosen point (star),
    the range's ends and its outer `edge` bands (grey), so that a reader sees each choice bracketed or
    not. A method's values are on its own validation scale (a classical method's −PSNR beside a network's
    loss): each row has one axis per scale, the methods that share the knob. False (nothing written) when
    no cell has trials."""
    cells = {label: c for label, c in results["cells"].items() if _tuned_knobs(c)}
    if not cells:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edge = results["spec"]["tuning"]["edge"]
    n_rows = max(len(_tuned_knobs(c)) for c in cells.values())
    fig, axes = plt.subplots(n_rows, len(cells), figsize=(5.5 * len(cells), 3.2 * n_rows), squeeze=False)
    for column, (label, cell) in enumerate(cells.items()):
        for row in range(n_rows):
            ax = axes[row, column]
            knobs = _tuned_knobs(cell)
            if row >= len(knobs):
                ax.axis("off")
                continue
            knob = knobs[row]
            low, high = cell["ranges"][knob][:2]
            span = math.log10(high / low)
            for side in ((low, low * 10 ** (edge * span)), (high / 10 ** (edge * span), high)):
                ax.axvspan(*side, color="0.9", zorder=0)
            series = [(f"C{i % 10}", m, [t for t in m.get("trial_points", [])
                                          if knob in t["params"] and t["value"] is not None])
                      for i, m in enumerate(cell["methods"].values())]
            series = [(c, m, pts) for c, m, pts in series if pts]
            # a classical method's value (−PSNR) and a network's loss are two scales: a second axis for the
            # negative ones where both meet in one row; a loss axis is logarithmic
            negative = {id(m) for _, m, pts in series if all(t["value"] < 0 for t in pts)}
            twin = ax.twinx() if negative and len(negative) < len(series) else None
            for colour, m, points in series:
                target = twin if twin is not None and id(m) in negative else ax
                for state, face in (("COMPLETE", colour), ("PRUNED", "none")):
                    xs = [t["params"][knob] for t in points if t["state"] == state]
                    ys = [t["value"] for t in points if t["state"] == state]
                    target.scatter(xs, ys, s=14, facecolors=face, edgecolors=colour,
                                   label=m["label"] if state == "COMPLETE" else None)
                complete = [t["value"] for t in points if t["state"] == "COMPLETE"]
                if m.get("chosen") and knob in m["chosen"] and complete:
                    target.scatter([m["chosen"][knob]], [min(complete)], marker="*", s=120, color=colour, zorder=5)
                if id(m) not in negative:
                    target.set_yscale("log")
            ax.set(xscale="log", xlim=(low / 1.5, high * 1.5), xlabel=knob,
                   title=f"{label}: {knob}" + (" (tuning in progress)" if cell.get("tuning") == "in progress"
                                               else ""))
            ax.set_ylabel("validation (lower is better)")
            if twin is not None:
                twin.set_ylabel("validation of the untrained methods")
            handles = [h for a in (ax, twin) if a is not None for h in a.get_legend_handles_labels()[0]]
            if handles:
                ax.legend(handles=handles, fontsize=6, loc="upper right")
    fig.suptitle("Tuning trials (filled: complete, hollow: pruned, star: chosen; grey: outer edge bands)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    return True


def write_report(results: dict, out_dir, stem: str = "report", command: str | None = None) -> dict:
    """OUT/<stem>.json, .md, .png (curves and intervals) and <stem>_tuning.png (`plot_tuning`, when the
    study tuned anything) from the results document; returns their paths."""
    out_dir = Path(out_dir)
    paths = {kind: out_dir / f"{stem}.{kind}" for kind in ("json", "md", "png")}
    write_json_atomic(paths["json"], results)
    tuning_png = out_dir / f"{stem}_tuning.png"
    tuned = plot_tuning(results, tuning_png)
    if tuned:
        paths["tuning_png"] = tuning_png
    write_text_atomic(paths["md"], markdown(results, command, tuning_figure=tuning_png.name if tuned else None))
    plot(results, paths["png"])
    return paths


__all__ = ["write_report", "markdown", "plot", "plot_tuning"]
