"""What a study found, assembled from its folder (`collect` → OUT/results.json).

One JSON document per study, read by the report writer (`common.study.report`) and by anyone who wants
to check a claim: per cell and method the tuned point and its bracketing, every final run's validation
curve and convergence status, its per-sample test values of every metric, and each declared comparison
with the two-level bootstrap interval over seeds and test samples (`common.stats.compare_methods`).
`records` repeats the per-sample values in long format (cell, method, seed, sample, metric, value).
Nothing here trains or evaluates: a partial study collects to a partial result whose `status` lists
what is missing.
"""
from __future__ import annotations

import json
import platform
import statistics
import time
from pathlib import Path

from common.stats import compare_methods, mean_se

from .convergence import finished, status
from .spec import StudySpec


def _read(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def method_runs(spec: StudySpec, out: Path, cell: dict, method, val_metric: str) -> list[dict]:
    """The finished and unfinished runs of one (cell, method): [{"seed", "run_dir", "done", "convergence",
    "curve" (validation metric per epoch), "elapsed" (training seconds at each epoch's end),
    "seconds_per_epoch", "per_sample", "info", "params"}]."""
    from common.training import read_metrics

    label = spec.cell_label(cell)
    if not method.trained:
        result = _read(out / "untrained" / label / method.name / "test.json")
        return [{"seed": None, "done": result is not None, "convergence": None, "curve": [], "elapsed": [],
                 "seconds_per_epoch": None, "per_sample": (result or {}).get("per_sample", {}),
                 "info": (result or {}).get("info", {}), "params": (result or {}).get("params")}]
    runs = []
    for seed in spec.seeds:
        run_dir = out / "runs" / "final" / label / method.name / f"seed-{seed}"
        records = read_metrics(run_dir)
        curve = [float(r[val_metric]) for r in records if val_metric in r]
        result = _read(run_dir / "test.json")
        seconds = [r["seconds"] for r in records]
        elapsed = [sum(seconds[:i + 1]) for i in range(len(seconds))]  # training seconds at each epoch's end
        # done: evaluated after the run finished by the current rule (a run evaluated after an earlier
        # rule's stop is reopened by the runner; until then it is missing)
        done = result is not None and finished(curve, spec.stopping, spec.schedule, epochs=len(records))
        runs.append({"seed": seed, "run_dir": str(run_dir.relative_to(out)), "done": done,
                     "convergence": status(curve, spec.stopping, spec.schedule) if curve else None, "curve": curve,
                     "elapsed": elapsed,
                     "seconds_per_epoch": statistics.median(seconds) if seconds else None,
                     "per_sample": (result or {}).get("per_sample", {}), "info": (result or {}).get("info", {}),
                     "params": (result or {}).get("params")})
    return runs


def summary_of(runs: list[dict]) -> dict:
    """Per metric: the mean over seeds of each seed's test mean, its standard error over seeds, and the
    number of seeds and samples."""
    metrics = sorted({m for r in runs if r["done"] for m in r["per_sample"]})
    out = {}
    for metric in metrics:
        per_seed = [statistics.fmean(r["per_sample"][metric]) for r in runs if r["done"] and r["per_sample"].get(metric)]
        mean, se = mean_se(per_seed)
        out[metric] = {"mean": mean, "se": se, "n_seeds": len(per_seed),
                       "n_samples": len(next(r for r in runs if r["done"])["per_sample"][metric])}
    return out


def _goal_met(result: dict, goal, direction: str):
    if goal is None:
        return None
    return result["high"] < goal if direction == "lower" else result["low"] > goal


def compare_cell(spec: StudySpec, methods: dict) -> list[dict]:
    """Every declared comparison of one cell (see `common.study.spec.Comparison`)."""
    rows = []
    for c in spec.comparison_list():
        metric = c.metric or spec.metric
        a, b = methods.get(c.method), methods.get(c.baseline)
        row = {"method": c.method, "baseline": c.baseline, "metric": metric, "statistic": spec.statistic,
               "goal": c.goal, "result": None, "goal_met": None}
        if a and b:
            va = [r["per_sample"][metric] for r in a["runs"] if r["done"] and metric in r["per_sample"]]
            vb = [r["per_sample"][metric] for r in b["runs"] if r["done"] and metric in r["per_sample"]]
            if va and vb and (len(va) == len(vb) or 1 in (len(va), len(vb))):
                row["result"] = compare_methods(va, vb, spec.statistic)
                row["goal_met"] = _goal_met(row["result"], c.goal, spec.direction)
        rows.append(row)
    return rows


def published_check(spec: StudySpec, methods: dict) -> list[dict]:
    """The study's methods beside their published values: {"method", "published", "source", "measured",
    "ratio", "tolerance", "within"} (within: |measured / published − 1| ≤ tolerance, default 20 %)."""
    rows = []
    for name, entry in spec.published.items():
        summary = methods.get(name, {}).get("summary", {}).get(spec.metric)
        measured = summary["mean"] if summary else None
        tolerance = float(entry.get("tolerance", 0.2))
        ratio = measured / entry["value"] if measured is not None else None
        rows.append({"method": name, "published": entry["value"], "source": entry.get("source", ""),
                     "measured": measured, "ratio": ratio, "tolerance": tolerance,
                     "within": None if ratio is None else abs(ratio - 1) <= tolerance})
    return rows


def _tuning_of(spec: StudySpec, out: Path, label: str, storage: str | None) -> dict:
    """A cell's finished tuning (OUT/tuning/<label>.json), else what its Optuna studies hold so far
    (`common.study.tuning.tuning_progress`: "in_progress" set), else {} (not started)."""
    finished = _read(out / "tuning" / f"{label}.json")
    if finished is not None:
        return finished
    database = out / "tuning.sqlite3"
    if storage is None and not database.exists():
        return {}
    from .tuning import tuning_progress

    return tuning_progress(spec, label, storage or f"sqlite:///{database.resolve()}") or {}


def collect(spec: StudySpec, out, val_metric: str, storage: str | None = None) -> dict:
    """The study's results.json document from the folder `out` (see the module docstring); a study still
    tuning reports each method's best trial so far (its cell's "tuning" is "in progress").

    storage: the Optuna storage of a study tuned with --storage (default: SQLite in `out`)."""
    out = Path(out)
    cells, records, missing, tuning_now = {}, [], [], []
    for cell in spec.cells:
        label = spec.cell_label(cell)
        tuning_label = spec.cell_label(spec.tuning_cell(cell))
        tuning = _tuning_of(spec, out, tuning_label, storage)
        if tuning.get("in_progress") and tuning_label not in tuning_now:
            tuning_now.append(tuning_label)
        methods = {}
        for method in spec.methods:
            runs = method_runs(spec, out, cell, method, val_metric)
            source = method.settings_from or method.name
            tuned = tuning.get("methods", {}).get(source, {})
            trials = [] if method.settings_from else tuned.get("trials", [])  # a control spends no budget
            entry = {"role": method.role, "label": method.label or method.name, "trained": method.trained,
                     "options": method.options, "settings_from": method.settings_from,
                     "chosen": tuned.get("chosen"), "bracketing": tuned.get("bracketing", {}),
                     # total: the budget spent (complete + pruned); failed: trials a kill interrupted, whose
                     # parameters ran again (common.study.tuning), or that raised
                     "trials": {"complete": sum(t["state"] == "COMPLETE" for t in trials),
                                "pruned": sum(t["state"] == "PRUNED" for t in trials),
                                "total": sum(t["state"] in ("COMPLETE", "PRUNED") for t in trials),
                                "failed": sum(t["state"] == "FAIL" for t in trials)},
                     # every finished trial (a pruned one's value is its last reported validation value)
                     "trial_points": [{k: t[k] for k in ("params", "value", "state", "epochs")} for t in trials
                                      if t["state"] in ("COMPLETE", "PRUNED")],
                     "runs": runs}
            done = [r for r in runs if r["done"]]
            entry["summary"] = summary_of(runs) if done else {}
            conv = [r["convergence"]["converged"] for r in done if r["convergence"]]
            entry["converged"] = {"runs": len(conv), "converged": sum(conv)} if method.trained else None
            infos = [r["info"] for r in done]
            entry["info"] = infos[0] if infos else {}
            seconds = [r["seconds_per_epoch"] for r in runs if r["seconds_per_epoch"]]
            entry["seconds_per_epoch"] = statistics.median(seconds) if seconds else None
            methods[method.name] = entry
            missing += [f"{label}/{method.name}" + (f"/seed-{r['seed']}" if method.trained else "")
                        for r in runs if not r["done"]]
            for r in done:
                for metric, values in r["per_sample"].items():
                    records += [{"cell": label, "method": method.name, "seed": r["seed"], "sample": i,
                                 "metric": metric, "value": float(v)} for i, v in enumerate(values)]
        tuning_state = ("in progress" if tuning.get("in_progress") else "done" if tuning
                        else "not started" if spec.tuned_methods() else "none")
        cells[label] = {"cell": cell, "ranges": tuning.get("ranges"), "widenings": tuning.get("rounds"),
                        "tuning": tuning_state, "tuning_target": tuning.get("target"),
                        "methods": methods, "comparisons": compare_cell(spec, methods),
                        "published": published_check(spec, methods)}
    unbracketed = [f"{label}/{m}: {k} at the {v}" for label, c in cells.items() if c["tuning"] == "done"
                   for m, e in c["methods"].items() if e["settings_from"] is None
                   for k, v in e["bracketing"].items() if v not in ("interior", "categorical")]
    unconverged = [f"{label}/{m}" for label, c in cells.items() for m, e in c["methods"].items()
                   if e["converged"] and e["converged"]["converged"] < e["converged"]["runs"]]
    import torch

    return {"study": spec.name, "application": spec.application, "spec": spec.to_dict(),
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "environment": {"python": platform.python_version(), "torch": torch.__version__,
                            "machine": platform.machine(), "processor": platform.processor() or None,
                            "threads": torch.get_num_threads()},
            "status": {"complete": not missing and not tuning_now, "missing": missing,
                       "tuning_in_progress": tuning_now, "unbracketed": unbracketed,
                       "not_converged": unconverged},
            "cells": cells, "records": records}


__all__ = ["collect", "compare_cell", "summary_of", "published_check", "method_runs"]
