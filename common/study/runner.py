"""Spec → plan → runs: the study runner shared by `pde` and `mri` (`run_study`, `plan`).

The application supplies a `StudyApplication` (what differs: data, how a method is trained and
evaluated); the runner owns the design (what is run, with which budget, in which order, and what is
recorded), so both applications' studies obey the same rules:

1. `app.prepare` makes or checks each cell's data (before anything is planned or run).
2. Tuning (`common.study.tuning.tune`): per cell whose tuning is its own, every tuned method gets the same
   Optuna budget; a trial is a training run with the tuning seed (never a final seed) whose validation
   curve is reported epoch by epoch to the pruner. Untrained methods (classical reconstructions) tune
   their knobs on validation with the same trial count (`app.validate`).
3. Final runs: every trained method × final seed × cell, with the chosen point (a control's is another
   method's: `Method.settings_from`), under the spec's schedule, until the validation metric converged
   by the spec's rule (`common.study.convergence`) or `stopping.max_epochs`.
4. Test evaluation, once per final run (untrained methods once per cell): per-sample values of every
   metric (`app.evaluate`), stored in the run folder as test.json.
5. `collect` assembles results.json (long-format per-sample records, tuning, convergence, curves,
   comparisons with two-level intervals); `common.study.report` writes the markdown and the figure.

Resume: every unit is idempotent. The Optuna storage (SQLite in the study folder) holds the trials; a
trial's or a final run's training resumes from its last.pt; a unit whose test.json exists is done. A
killed study rerun with the same spec continues where it stopped; another spec in the same folder is
refused unless `overwrite`.

Folder layout (OUT):
    spec.json                      the spec as run (compared on every rerun)
    tuning.sqlite3                 Optuna storage (unless an RDB URL is given)
    tuning/<cell>.json             per cell: ranges, rounds, chosen points, bracketing, trials
    runs/tune/<cell>/<method>/<hash>/   one tuning trial (metrics.jsonl; checkpoints removed when done)
    runs/final/<cell>/<method>/seed-<s>/  a final run (metrics.jsonl, best.pt, last.pt, test.json)
    untrained/<cell>/<method>/test.json   a method without training
    measure.json                   measured seconds per epoch per (cell, method) (for the plan)
    results.json, report.md, report.png
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from common.errors import ConfigError, RunExistsError
from common.files import make_folder, write_json_atomic

from .convergence import converged, finished, status
from .spec import Method, StudySpec


@dataclass
class RunRequest:
    """One training run the application must carry out (`StudyApplication.train`).

    phase: "tune" | "final" | "measure"; epochs: the run's epoch cap (the schedule is planned over it:
    `schedule_settings`); resume: continue from run_dir/last.pt (it exists); params: the knob values
    (lr, weight_decay, transform_lr, …) on top of `method.options`."""
    spec: StudySpec
    cell: dict
    method: Method
    params: dict
    seed: int
    run_dir: Path
    epochs: int
    phase: str
    resume: bool = False
    device: str = "auto"
    progress: bool = False
    stop_after: int | None = None


class StudyApplication(Protocol):
    """What an application supplies to the runner.

    val_metric: the metrics.jsonl key of the per-epoch validation metric (lower is better).
    prepare(spec, cell) -> None: make or check the cell's data (idempotent; before any run).
    train(request, callback) -> None: one resumable training run into request.run_dir with the
        engine's files (common.training.train_loop: metrics.jsonl, last.pt, best.pt); `callback(epoch,
        record)` must be passed on to train_loop (it returns True when the run should stop).
    evaluate(spec, cell, method, params, run_dir, device) -> {"per_sample": {metric: [values]},
        "info": {...}}: the test split, once; run_dir is None for an untrained method. Per-sample lists
        of every run of a cell are in the same sample order (the pairing of the comparisons).
    validate(spec, cell, method, params) -> float: validation score (lower is better) of an untrained
        method at `params` (its tuning objective).
    """
    val_metric: str

    def prepare(self, spec: StudySpec, cell: dict, device: str) -> None: ...
    def train(self, request: RunRequest, callback: Callable[[int, dict], bool]) -> None: ...
    def evaluate(self, spec: StudySpec, cell: dict, method: Method, params: dict, run_dir: Path | None,
                 device: str) -> dict: ...
    def validate(self, spec: StudySpec, cell: dict, method: Method, params: dict) -> float: ...


def schedule_settings(spec: StudySpec, epochs: int) -> dict:
    """The common.training.RunSettings schedule fields of the spec's schedule for a run of `epochs`:
    {"step_size", "gamma", "cosine_epochs"} (cosine is planned over the run's cap)."""
    s = spec.schedule
    if s.kind == "cosine":
        return {"step_size": None, "gamma": s.gamma, "cosine_epochs": epochs}
    if s.kind == "step":
        return {"step_size": s.step_epochs, "gamma": s.gamma, "cosine_epochs": None}
    return {"step_size": None, "gamma": s.gamma, "cosine_epochs": None}


# ---------------------------------------------------------------------------------------------- files
def read_values(run_dir: Path, metric: str) -> list[float]:
    """The per-epoch validation values of a run folder's metrics.jsonl ([] when there is none)."""
    from common.training import read_metrics

    return [float(r[metric]) for r in read_metrics(run_dir) if metric in r]


def read_seconds(run_dir: Path) -> list[float]:
    from common.training import read_metrics

    return [float(r["seconds"]) for r in read_metrics(run_dir)]


def params_key(params: dict) -> str:
    """A short stable name for a point of the search space (a trial's folder)."""
    # numbers as floats (a stored study's folder names stay what they were); a categorical choice as itself
    text = json.dumps({k: v if isinstance(v, str) else float(v) for k, v in sorted(params.items())}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


#: Spec keys that say how a study is executed, not what it is: a resumed study may change them.
EXECUTION_KEYS = ("jobs", "threads", "device")


def open_folder(spec: StudySpec, out: Path, overwrite: bool) -> None:
    """Create OUT with spec.json, or check that the spec stored there is this one (a resumed study; it may
    run with other EXECUTION_KEYS)."""
    path = out / "spec.json"
    if path.exists():
        # through from_dict: a field added since the folder was made reads as its default, not as a difference
        stored = StudySpec.from_dict(json.loads(path.read_text())).to_dict()
        current = spec.to_dict()
        differ = sorted(k for k in set(stored) | set(current)
                        if k not in EXECUTION_KEYS and stored.get(k) != current.get(k))
        if differ:
            if not overwrite:
                raise RunExistsError(f"{out} holds study {stored.get('name')!r} with another spec (differs in "
                                     f"{', '.join(differ)}); not mixing them",
                                     hint="rerun with the same spec to resume, --overwrite to start again, "
                                          "or choose another --out")
            shutil.rmtree(out)
    elif out.exists() and any(out.iterdir()) and not overwrite:
        raise RunExistsError(f"{out} is a non-empty folder that holds no study", hint="choose another --out")
    make_folder(out)
    write_json_atomic(path, spec.to_dict())


# ---------------------------------------------------------------------------------------------- units
def _final_dir(out: Path, spec: StudySpec, cell: dict, method: str, seed: int) -> Path:
    return out / "runs" / "final" / spec.cell_label(cell) / method / f"seed-{seed}"


def _untrained_dir(out: Path, spec: StudySpec, cell: dict, method: str) -> Path:
    return out / "untrained" / spec.cell_label(cell) / method


def resumable(run_dir: Path) -> bool:
    """Whether a run folder holds a run to continue (its last.pt). Without last.pt, anything else in it
    (a metrics line or best.pt written before a kill reached the first last.pt) is stale and removed, so
    the run starts again from scratch."""
    if (run_dir / "last.pt").exists():
        return True
    for name in ("metrics.jsonl", "best.pt", "config.json"):
        (run_dir / name).unlink(missing_ok=True)
    return False


def train_final(app: StudyApplication, spec: StudySpec, request: RunRequest) -> None:
    """Train a final run until it converged by the spec's rule or reached its cap (resumable; a run
    that already stopped is not trained further)."""
    values = read_values(request.run_dir, app.val_metric)
    if (request.run_dir / "last.pt").exists() and finished(values, spec.stopping, spec.schedule,
                                                          epochs=len(read_seconds(request.run_dir))):
        return

    def callback(epoch, record):  # the files of this epoch are written: the whole curve is on disk
        return converged(read_values(request.run_dir, app.val_metric), spec.stopping, spec.schedule)

    request.resume = resumable(request.run_dir)
    app.train(request, callback)


def evaluated(app: StudyApplication, spec: StudySpec, request: RunRequest) -> bool:
    """Whether a final run is done: evaluated (test.json) after it converged or reached its cap."""
    return ((request.run_dir / "test.json").exists()
            and finished(read_values(request.run_dir, app.val_metric), spec.stopping, spec.schedule,
                         epochs=len(read_seconds(request.run_dir))))


def final_unit(app: StudyApplication, spec: StudySpec, request: RunRequest, threads: int | None = None) -> str:
    """Train (or resume) one final run and evaluate it on the test split once; returns its folder."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    result_path = request.run_dir / "test.json"
    if evaluated(app, spec, request):
        return str(request.run_dir)
    if result_path.exists():
        # evaluated after a stop the rule no longer makes (a study begun under an earlier version of it):
        # training continues from its last epoch (the schedule is planned over the cap, so the run goes on
        # as if it had never stopped) and the continued run is evaluated instead
        print(f"reopening {request.run_dir}: it stopped at epoch {len(read_values(request.run_dir, app.val_metric))}, "
              "before the stopping rule holds", flush=True)
        result_path.unlink()
    train_final(app, spec, request)
    result = app.evaluate(spec, request.cell, request.method, request.params, request.run_dir, request.device)
    write_json_atomic(result_path, {**result, "params": request.params, "seed": request.seed})
    return str(request.run_dir)


def tuning_objective(app: StudyApplication, spec: StudySpec, cell: dict, method: Method, out: Path,
                     device: str):
    """The Optuna objective of a method in a cell: a training run (or an untrained method's validation)
    at the trial's point. A trial folder is named by its point, so a trial re-run after a kill resumes
    its training; the epochs on disk are re-reported before training goes on."""
    import optuna

    if not method.trained:
        return lambda params, report: app.validate(spec, cell, method, params)

    def objective(params, report):
        run_dir = out / "runs" / "tune" / spec.cell_label(cell) / method.name / params_key(params)
        outcome_path = run_dir / "trial.json"
        if outcome_path.exists():  # finished before a kill kept Optuna from recording it
            outcome = json.loads(outcome_path.read_text())
            for epoch, value in enumerate(read_values(run_dir, app.val_metric)):
                report(epoch, value)
            if outcome["pruned"]:
                raise optuna.TrialPruned()
            return outcome["value"]
        resume = resumable(run_dir)
        reported = set()
        pruned = False
        for epoch, value in enumerate(read_values(run_dir, app.val_metric)):  # epochs a killed run finished
            reported.add(epoch)
            pruned = report(epoch, value) or pruned
        values = read_values(run_dir, app.val_metric)
        if not pruned and len(values) < spec.tuning.epochs:
            def callback(epoch, record):
                nonlocal pruned
                if epoch in reported:
                    return False
                reported.add(epoch)
                pruned = report(epoch, float(record[app.val_metric]))
                return pruned
            request = RunRequest(spec, cell, method, dict(params), spec.tune_seed, run_dir, spec.tuning.epochs,
                                 "tune", resume=resume, device=device)
            app.train(request, callback)
        values = read_values(run_dir, app.val_metric)
        if not pruned and (not values or not all(math.isfinite(v) for v in values)):
            raise ConfigError(f"tuning trial {run_dir} has no finite validation values")
        write_json_atomic(outcome_path, {"pruned": pruned, "value": min(values) if values else None})
        for name in ("last.pt", "best.pt"):  # a finished trial needs only its curve
            (run_dir / name).unlink(missing_ok=True)
        if pruned:
            raise optuna.TrialPruned()
        return min(values)
    return objective


# ---------------------------------------------------------------------------------------------- plan
@dataclass
class Plan:
    """What a study will run: per cell and method the tuning trials (at most, with every widening) and
    final runs, and the estimated hours (from measured seconds per epoch, where measured): an upper
    bound and the expected value under pruning (`expected_trial_epochs`)."""
    rows: list = field(default_factory=list)

    def text(self) -> str:
        lines = [f"{'cell':<18} {'method':<18} {'trials':>7} {'≤ epochs':>9} {'finals':>7} {'≤ epochs':>9} "
                 f"{'s/epoch':>8} {'≤ hours':>8} {'≈ hours':>8}"]
        total = expected = 0.0
        for r in self.rows:
            hours = r["hours"]
            total += hours or 0.0
            expected += r["expected_hours"] or 0.0
            lines.append(f"{r['cell']:<18} {r['method']:<18} {r['trials']:>7} {r['tuning_epochs']:>9} "
                         f"{r['finals']:>7} {r['final_epochs']:>9} "
                         f"{(format(r['seconds_per_epoch'], '.3g') if r['seconds_per_epoch'] else '-'):>8} "
                         f"{(format(hours, '.3g') if hours is not None else '-'):>8} "
                         f"{(format(r['expected_hours'], '.3g') if hours is not None else '-'):>8}")
        if any(r["hours"] is None and (r["tuning_epochs"] or r["final_epochs"]) for r in self.rows):
            lines.append("total: unknown until seconds per epoch are measured (--dry-run --measure); "
                         f"≤ {sum(r['tuning_epochs'] + r['final_epochs'] for r in self.rows)} epochs in all")
        else:
            lines.append(f"total ≤ {total:.3g} hours on one worker (every trial to its last epoch, every widening, "
                         f"every final run to its cap); ≈ {expected:.3g} hours with the pruner's expected trial "
                         "length, no widening, final runs to their cap (convergence stops them earlier)")
        if any(r["untrained"] for r in self.rows):  # untrained methods: their validation and test passes
            lines.append("untrained methods are not in the hours: one validation pass per trial and one test "
                         "pass each")
        return "\n".join(lines)


def expected_trial_epochs(spec: StudySpec) -> float:
    """Expected epochs of one tuning trial under successive halving: every trial reaches the first rung
    (min_epochs), a 1/reduction share of them each next rung (min_epochs · reduction^k), none beyond
    tuning.epochs; without a pruner, tuning.epochs."""
    t = spec.tuning
    if t.pruner == "none":
        return float(t.epochs)
    expected, done, k = 0.0, 0, 0
    while done < t.epochs:
        rung = min(t.epochs, t.min_epochs * t.reduction ** k)
        expected += (rung - done) * t.reduction ** -k
        done, k = rung, k + 1
    return expected


def plan(spec: StudySpec, seconds_per_epoch: dict | None = None) -> Plan:
    """The plan of `spec`; seconds_per_epoch: {(cell label, method): seconds} measured (`measure`)."""
    seconds_per_epoch = seconds_per_epoch or {}
    t = spec.tuning
    max_trials = t.trials + t.max_widenings * t.extra_trials
    rows = []
    for cell in spec.cells:
        label = spec.cell_label(cell)
        own_tuning = "tune_with" not in cell
        for method in spec.methods:
            tuned = own_tuning and method.settings_from is None and bool(method.knobs)
            trials = max_trials if tuned else 0
            tuning_epochs = trials * t.epochs if method.trained else 0
            finals = len(spec.seeds) if method.trained else 1
            final_epochs = finals * spec.stopping.max_epochs if method.trained else 0
            sec = seconds_per_epoch.get((label, method.name))
            hours = (tuning_epochs + final_epochs) * sec / 3600 if sec is not None else None
            pruned = (t.trials * expected_trial_epochs(spec) if tuned and method.trained else 0) + final_epochs
            rows.append({"cell": label, "method": method.name, "trials": trials, "tuning_epochs": tuning_epochs,
                         "finals": finals, "final_epochs": final_epochs, "seconds_per_epoch": sec, "hours": hours,
                         "expected_hours": pruned * sec / 3600 if sec is not None else None,
                         "untrained": not method.trained})
    return Plan(rows)


def measure(app: StudyApplication, spec: StudySpec, out: Path, epochs: int = 2, device: str = "auto",
            log: Callable[[str], None] = print) -> dict:
    """Seconds per epoch of every trained (cell, method), measured by training `epochs` epochs at the
    middle of the search space (the last epoch's time: the first includes warm-up). Cached in
    OUT/measure.json. Returns {(cell label, method): seconds}."""
    path = out / "measure.json"
    cached = json.loads(path.read_text()) if path.exists() else {}
    for cell in spec.cells:
        label = spec.cell_label(cell)
        for method in spec.methods:
            key = f"{label}/{method.name}"
            if not method.trained or key in cached:
                continue
            params = {k: spec.space[k].middle for k in method.knobs}
            run_dir = out / "measure" / label / method.name
            shutil.rmtree(run_dir, ignore_errors=True)
            log(f"measuring seconds per epoch: {key}")
            app.train(RunRequest(spec, cell, method, params, spec.tune_seed, run_dir, epochs, "measure", device=device),
                      lambda epoch, record: False)
            cached[key] = read_seconds(run_dir)[-1]
            shutil.rmtree(run_dir, ignore_errors=True)
            write_json_atomic(path, cached)
    return {tuple(k.split("/", 1)): v for k, v in cached.items()}


# ---------------------------------------------------------------------------------------------- run
def chosen_params(spec: StudySpec, tuning: dict, method: Method) -> dict:
    """The point a method's final runs use: its own tuned choice, another method's (a control), or
    nothing (an untuned method: its options only)."""
    source = method.settings_from or method.name
    entry = tuning.get("methods", {}).get(source)
    if entry is None:
        return {}
    if entry["chosen"] is None:
        raise ConfigError(f"method {source} completed no tuning trial; nothing to choose",
                          hint="raise tuning.trials, or widen the ranges")
    return dict(entry["chosen"])


def run_study(spec: StudySpec, app: StudyApplication, out, storage: str | None = None, overwrite: bool = False,
              device: str | None = None, jobs: int | None = None, log: Callable[[str], None] = print,
              phases: tuple = ("tune", "final")) -> dict:
    """Run (or resume) `spec` into `out`; returns the collected results (also OUT/results.json).

    storage: an Optuna storage URL shared by several workers (default: SQLite in OUT, single worker).
    jobs: worker processes (default spec.jobs), each with spec.threads threads: the methods of a tuning
    round side by side, then the final runs.
    phases: ("tune",) stops after tuning (e.g. one worker of several tunes, another collects).
    """
    out = Path(out)
    device = device or spec.device
    jobs = jobs or spec.jobs
    open_folder(spec, out, overwrite)
    single_worker = storage is None
    storage = storage or f"sqlite:///{(out / 'tuning.sqlite3').resolve()}"
    for cell in spec.cells:
        log(f"preparing data: {spec.cell_label(cell)}")
        app.prepare(spec, cell, device)
    tunings = {}
    for cell in spec.cells:
        if "tune_with" in cell:
            continue
        label = spec.cell_label(cell)
        path = out / "tuning" / f"{label}.json"
        if path.exists():
            tunings[label] = json.loads(path.read_text())
            continue
        if "tune" not in phases:
            raise ConfigError(f"cell {label} is not tuned yet", hint="run the tuning phase first")
        from .tuning import tune

        objectives = {m.name: tuning_objective(app, spec, cell, m, out, device) for m in spec.tuned_methods()}
        run_round = None
        if jobs > 1:
            def run_round(units, cell=cell):
                _parallel([(tuning_unit, (app, spec, cell, name, knobs, target, out, device, storage, single_worker))
                           for name, knobs, target in units], jobs, log)
        tunings[label] = (tune(spec, label, objectives, storage, single_worker=single_worker, progress=log,
                               run_round=run_round)
                          if objectives else {"ranges": {}, "rounds": 0, "methods": {}})  # fixed points only
        write_json_atomic(path, tunings[label])
    if "final" not in phases:
        return {"tuning": tunings}

    requests = []
    for cell in spec.cells:
        tuning = tunings[spec.cell_label(spec.tuning_cell(cell))]
        for method in spec.methods:
            params = chosen_params(spec, tuning, method)
            if not method.trained:
                target = _untrained_dir(out, spec, cell, method.name) / "test.json"
                if not target.exists():
                    log(f"evaluating {spec.cell_label(cell)}/{method.name} (untrained)")
                    result = app.evaluate(spec, cell, method, params, None, device)
                    write_json_atomic(target, {**result, "params": params, "seed": None})
                continue
            for seed in spec.seeds:
                requests.append(RunRequest(spec, cell, method, params, seed, _final_dir(out, spec, cell, method.name, seed),
                                           spec.stopping.max_epochs, "final", device=device))
    _run_finals(app, spec, requests, jobs, log)
    from .results import collect

    results = collect(spec, out, app.val_metric)
    write_json_atomic(out / "results.json", results)
    return results


def tuning_unit(app, spec: StudySpec, cell: dict, method: str, knobs: dict, target: int, out: Path, device: str,
                storage: str, single_worker: bool) -> str:
    """One method's trials of a tuning round, in a worker process (`common.study.tuning.tune_method`)."""
    import torch

    from .tuning import tune_method

    torch.set_num_threads(spec.threads)
    objective = tuning_objective(app, spec, cell, spec.method(method), out, device)
    tune_method(spec, spec.cell_label(cell), method, knobs, target, objective, storage, single_worker,
                progress=print)
    return f"tuned {spec.cell_label(cell)}/{method} to {target} trials"


def _parallel(calls: list, jobs: int, log) -> None:
    """Run [(function, args)] in `jobs` worker processes (spawned: a forked process would inherit the
    parent's OpenMP threads); the first failure is raised after the others finished."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(function, *args) for function, args in calls]
        for future in as_completed(futures):
            log(f"finished {future.result()}")


def _run_finals(app, spec: StudySpec, requests: list, jobs: int, log) -> None:
    """Every final run: in this process (jobs = 1) or in `jobs` worker processes."""
    todo = [r for r in requests if not evaluated(app, spec, r)]
    if jobs > 1:
        _parallel([(final_unit, (app, spec, r, spec.threads)) for r in todo], jobs, log)
        return
    from tqdm.auto import tqdm

    bar = tqdm(total=len(requests), initial=len(requests) - len(todo), desc=f"final runs of {spec.name}",
               unit="run", leave=False)
    for r in todo:
        bar.set_postfix_str(f"{spec.cell_label(r.cell)}/{r.method.name}/seed {r.seed}")
        final_unit(app, spec, r)
        bar.update(1)
    bar.close()


def convergence_of(spec: StudySpec, run_dir: Path, metric: str) -> dict:
    """The convergence status of a final run (`common.study.convergence.status` of its curve)."""
    return status(read_values(run_dir, metric), spec.stopping, spec.schedule)


__all__ = ["RunRequest", "StudyApplication", "run_study", "plan", "Plan", "expected_trial_epochs", "measure", "schedule_settings",
           "read_values", "params_key", "resumable", "train_final", "final_unit", "tuning_objective", "chosen_params",
           "open_folder", "convergence_of"]
