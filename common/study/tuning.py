"""Equal-budget tuning with Optuna that brackets its optimum (`tune`).

Every tuned method gets the same number of trials over the same log-uniform range of each knob it
shares with others (`StudySpec.space`); its extra knobs (transform lr) are searched inside that budget.
A trial trains up to `Tuning.epochs` and reports its validation metric every epoch; the pruner
(Hyperband or successive halving, Optuna's) stops poor trials early, so a CPU affords ≥ 20 trials per
method. A trial's value is its best validation metric (lower is better).

A categorical knob (`spec.Choice`, e.g. a wavelet family) is searched by the same sampler over its choices.

Bracketing: a chosen value in the outer `Tuning.edge` fraction (log scale) of its range is
*unbracketed*; that end of the range is widened by a decade — for every method that tunes the knob, so
shared ranges stay equal — and every tuned method runs `extra_trials` more, until each choice is
interior or `max_widenings` is reached. `bracketing` in the result says which choices are still on an
edge ("categorical" for a Choice, which has none). The widened ranges are stored in the Optuna study (user attribute "ranges"), so a resumed study
continues with them.

Storage: an Optuna storage URL (SQLite inside the study folder, or an RDB URL shared by workers on
several machines); one Optuna study per (cell, method), named "<study>/<cell>/<method>".
Reproducible: trial k of a method is proposed by a TPE sampler seeded with `sampler_seed + k` from the
history before it, so a killed study resumes to the same trial history (a trial the kill left RUNNING
is marked failed and its parameters are run again first). That holds for the successive-halving
pruner (the default); Hyperband assigns brackets by trial number, which the failed trial shifts.
An objective stops a pruned trial by raising `optuna.TrialPruned` when `report` returns True.
"""
from __future__ import annotations

import math
from typing import Callable

from .spec import Choice, Knob, StudySpec

#: objective(params, report) -> value; report(epoch, value) returns True when the trial should stop (pruned)
Objective = Callable[[dict, Callable[[int, float], bool]], float]


def position(value: float, knob: Knob) -> float:
    """Where `value` lies in the knob's range, 0 (low end) … 1 (high end), on the log scale."""
    if knob.log:
        return (math.log(value) - math.log(knob.low)) / (math.log(knob.high) - math.log(knob.low))
    return (value - knob.low) / (knob.high - knob.low)


def edge_of(value: float, knob: Knob | Choice, edge: float) -> str | None:
    """"low" / "high" when `value` is in the outer `edge` fraction of the range at that end, else None
    (always None for a Choice: its choices have no order, so no edge)."""
    if isinstance(knob, Choice):
        return None
    where = position(value, knob)
    return "low" if where < edge else "high" if where > 1 - edge else None


def widened(knob: Knob, side: str) -> Knob:
    """The knob's range with one end moved out by a decade (a factor 10 on the log scale)."""
    if side == "low":
        return Knob(knob.low / 10, knob.high, knob.log)
    return Knob(knob.low, knob.high * 10, knob.log)


def _distribution(knob: Knob | Choice):
    import optuna

    if isinstance(knob, Choice):
        return optuna.distributions.CategoricalDistribution(list(knob.choices))
    return optuna.distributions.FloatDistribution(knob.low, knob.high, log=knob.log)


def _stored(knob: Knob | Choice):
    """A range as the Optuna study's user attribute holds it (JSON), read back by `_loaded`."""
    return {"choices": list(knob.choices)} if isinstance(knob, Choice) else [knob.low, knob.high, knob.log]


def _loaded(value) -> Knob | Choice:
    return Choice(tuple(value["choices"])) if isinstance(value, dict) else Knob(*value)


def _bracketing(value, knob: Knob | Choice, edge: float) -> str:
    if isinstance(knob, Choice):
        return "categorical"
    return {"low": "low edge", "high": "high edge"}.get(edge_of(value, knob, edge), "interior")


def _pruner(spec: StudySpec):
    import optuna

    t = spec.tuning
    if t.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=t.min_epochs, max_resource=t.epochs,
                                              reduction_factor=t.reduction)
    if t.pruner == "successive-halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=t.min_epochs, reduction_factor=t.reduction)
    return optuna.pruners.NopPruner()


def open_study(spec: StudySpec, cell_label: str, method: str, storage: str):
    """The Optuna study of one (cell, method), created or loaded from `storage`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(study_name=f"{spec.name}/{cell_label}/{method}", storage=storage,
                               direction="minimize", pruner=_pruner(spec), load_if_exists=True)


def _settle_stale_trials(study) -> None:
    """Trials a killed process left RUNNING: failed, and their parameters queued to run again first
    (single-worker storages only; see `tune`)."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_state_values(trial._trial_id, TrialState.FAIL)
        study.enqueue_trial(trial.params, skip_if_exists=False)


def _finished(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))


def run_trials(study, knobs: dict[str, Knob], target: int, objective: Objective, sampler_seed: int,
               progress: Callable[[str], None] | None = None) -> None:
    """Run trials of `study` until `target` have finished (complete or pruned), each one proposed by a
    TPE sampler seeded by its index (reproducible from the history alone)."""
    import optuna

    while len(_finished(study)) < target:
        index = len(_finished(study))
        study.sampler = optuna.samplers.TPESampler(seed=sampler_seed + index)
        trial = study.ask({name: _distribution(k) for name, k in knobs.items()})
        if progress:
            progress(f"trial {index + 1}/{target}")

        def report(epoch: int, value: float, trial=trial) -> bool:
            trial.report(float(value), int(epoch))
            return trial.should_prune()

        try:
            value = objective(dict(trial.params), report)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        except Exception:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            raise
        if trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, float(value))


def best_trial(study):
    """The completed trial with the lowest value (None when no trial completed)."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return min(done, key=lambda t: t.value) if done else None


def tune_method(spec: StudySpec, cell_label: str, method: str, knobs: dict[str, Knob], target: int,
                objective: Objective, storage: str, single_worker: bool = True,
                progress: Callable[[str], None] | None = None) -> None:
    """One method's share of a tuning round: its trials until `target` have finished (the unit that
    several processes may run side by side: each method's trials depend on its own history only)."""
    study = open_study(spec, cell_label, method, storage)
    if single_worker:
        _settle_stale_trials(study)
    say = (lambda text: progress(f"tuning {cell_label}/{method}: {text}")) if progress else None
    run_trials(study, knobs, target, objective, spec.tuning.sampler_seed, say)


def tune(spec: StudySpec, cell_label: str, objectives: dict[str, Objective], storage: str,
         single_worker: bool = True, progress: Callable[[str], None] | None = None,
         run_round: Callable[[list], None] | None = None) -> dict:
    """Tune every method of `objectives` (the spec's tuned methods) with the same budget, widening
    unbracketed ranges; returns {"ranges": {knob: [low, high] | {"choices": [...]}}, "rounds": n, "methods":
    {method: {"chosen", "value", "trials": [...], "bracketing": {knob: "interior" | "low edge" | "high edge" |
    "categorical"}}}}.

    single_worker: this process is the only one using `storage` for these studies (SQLite in the study
    folder), so trials left RUNNING are stale; with a shared RDB storage pass False.
    run_round(units): runs one round's units [(method name, {knob: Knob}, target)] (e.g. in parallel
    processes, each calling `tune_method`); default: one after another in this process."""
    methods = [m for m in spec.tuned_methods() if m.name in objectives]
    studies = {m.name: open_study(spec, cell_label, m.name, storage) for m in methods}
    anchor = studies[methods[0].name]
    ranges = {k: _loaded(v) for k, v in anchor.user_attrs.get("ranges", {}).items()} or dict(spec.space)
    rounds = int(anchor.user_attrs.get("rounds", 0))
    t = spec.tuning
    while True:
        target = t.trials + rounds * t.extra_trials  # the same for every method
        units = [(m.name, {k: ranges[k] for k in m.knobs}, target) for m in methods]
        if run_round is None:
            for name, knobs, target in units:
                tune_method(spec, cell_label, name, knobs, target, objectives[name], storage, single_worker, progress)
        else:
            run_round(units)
        studies = {m.name: open_study(spec, cell_label, m.name, storage) for m in methods}  # what the round wrote
        anchor = studies[methods[0].name]
        unbracketed = {}
        for method in methods:
            best = best_trial(studies[method.name])
            for knob in method.knobs if best else ():
                side = edge_of(best.params[knob], ranges[knob], t.edge)
                if side:
                    unbracketed.setdefault(knob, set()).add(side)
        if not unbracketed or rounds >= t.max_widenings:
            break
        for knob, sides in unbracketed.items():
            for side in sorted(sides):
                ranges[knob] = widened(ranges[knob], side)
        rounds += 1
        anchor.set_user_attr("ranges", {k: _stored(v) for k, v in ranges.items()})
        anchor.set_user_attr("rounds", rounds)
    return _summary(spec, methods, studies, ranges, rounds)


def _summary(spec: StudySpec, methods: list, studies: dict, ranges: dict, rounds: int) -> dict:
    """`tune`'s result from the methods' Optuna studies (see `tune`)."""
    t = spec.tuning
    result = {"ranges": {k: _stored(v)[:2] if isinstance(v, Knob) else _stored(v) for k, v in ranges.items()},
              "rounds": rounds, "methods": {}}
    for method in methods:
        study = studies.get(method.name)
        best = best_trial(study) if study else None
        status = {k: _bracketing(best.params[k], ranges[k], t.edge) if best else "no completed trial"
                  for k in method.knobs}
        result["methods"][method.name] = {
            "chosen": dict(best.params) if best else None, "value": best.value if best else None,
            "bracketing": status,
            "trials": [{"number": tr.number, "state": tr.state.name, "params": dict(tr.params), "value": tr.value,
                        "epochs": len(tr.intermediate_values)} for tr in (study.get_trials(deepcopy=False)
                                                                        if study else [])]}
    return result


def tuning_progress(spec: StudySpec, cell_label: str, storage: str) -> dict | None:
    """What the tuning of one cell holds so far, read from `storage` without running or creating
    anything: `tune`'s result with each method's best trial *so far* as "chosen", plus "target" (the
    finished trials every method needs in the round under way) and "in_progress": True. None when no
    method of the cell has started."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = set(optuna.study.get_all_study_names(storage))
    methods = spec.tuned_methods()
    studies = {m.name: optuna.load_study(study_name=name, storage=storage) for m in methods
               if (name := f"{spec.name}/{cell_label}/{m.name}") in names}
    if not studies:
        return None
    anchor = studies.get(methods[0].name)
    attrs = anchor.user_attrs if anchor else {}
    ranges = {k: _loaded(v) for k, v in attrs.get("ranges", {}).items()} or dict(spec.space)
    rounds = int(attrs.get("rounds", 0))
    result = _summary(spec, methods, studies, ranges, rounds)
    return {**result, "target": spec.tuning.trials + rounds * spec.tuning.extra_trials, "in_progress": True}


__all__ = ["tune", "tune_method", "tuning_progress", "run_trials", "open_study", "best_trial", "position", "edge_of", "widened", "Objective"]
