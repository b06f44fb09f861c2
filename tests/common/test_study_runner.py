"""The study runner end to end on a toy application: noisy linear regression trained by the real engine
(`common.training.train_loop`), so tuning, pruning, final runs, convergence, resume, the untrained
path (ridge regression in closed form, its λ tuned on validation) and the report are exercised as a PDE
or MRI study uses them, in seconds."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from common.errors import RunExistsError
from common.study import StudySpec
from common.study.report import markdown, write_report
from common.study.runner import plan, read_values, run_study
from common.training import RunSettings, train_loop

N_FEATURES = 6


def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(N_FEATURES, 1, generator=g)
    x = torch.randn(160, N_FEATURES, generator=g)
    y = x @ w + 0.1 * torch.randn(160, 1, generator=g)
    return (x[:96], y[:96]), (x[96:128], y[96:128]), (x[128:], y[128:])


class ToyTask:
    metric_name = "val_mse"
    loss_reduction = "mean"
    has_validation = True
    transform_types = ()

    def __init__(self, width):
        (self.x, self.y), (self.vx, self.vy), _ = _data()
        self.n_train, self.width, self.name = self.x.shape[0], width, "toy"

    def build_model(self):
        return nn.Sequential(nn.Linear(N_FEATURES, self.width), nn.Linear(self.width, 1))

    def batches(self, steps, epoch, device):
        for indices in steps:
            yield self.x[indices], self.y[indices]

    def per_sample_loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean(dim=1)

    def validate(self, model, device):
        with torch.no_grad():
            return float(((model(self.vx) - self.vy) ** 2).mean())

    def describe(self, model):
        return {"parameters": {"total": sum(p.numel() for p in model.parameters())}}


class ToyApp:
    val_metric = "val_mse"

    def __init__(self):
        self.trained = []

    def prepare(self, spec, cell, device):
        pass

    def train(self, request, callback):
        self.trained.append((request.phase, request.method.name, request.seed))
        from common.study.runner import schedule_settings

        settings = RunSettings(epochs=request.epochs, batch_size=16, lr=request.params["lr"],
                               weight_decay=request.params.get("weight_decay", 0.0), seed=request.seed,
                               device="cpu", resume=request.resume, progress=False, stop_after=request.stop_after,
                               **schedule_settings(request.spec, request.epochs))
        train_loop(ToyTask(request.method.options.get("width", 4)), settings, request.run_dir,
                   {"params": request.params, "seed": request.seed, "options": request.method.options}, callback)

    def evaluate(self, spec, cell, method, params, run_dir, device):
        _, _, (tx, ty) = _data()
        if run_dir is None:  # ridge regression, closed form
            (x, y), _, _ = _data()
            w = torch.linalg.solve(x.T @ x + params["lamda"] * torch.eye(N_FEATURES), x.T @ y)
            pred = tx @ w
            info = {"parameters": {"total": N_FEATURES}}
        else:
            from common.checkpoints import load_checkpoint

            model = ToyTask(method.options.get("width", 4)).build_model()
            model.load_state_dict(load_checkpoint(run_dir / "best.pt")["model"])
            with torch.no_grad():
                pred = model(tx)
            info = {"parameters": {"total": sum(p.numel() for p in model.parameters())}}
        return {"per_sample": {"abs_error": (pred - ty).abs().squeeze(1).tolist()}, "info": info}

    def validate(self, spec, cell, method, params):
        (x, y), (vx, vy), _ = _data()
        w = torch.linalg.solve(x.T @ x + params["lamda"] * torch.eye(N_FEATURES), x.T @ y)
        return float(((vx @ w - vy) ** 2).mean())


def _spec(**changes) -> StudySpec:
    values = {
        "name": "toy", "application": "toy", "seeds": [0, 1, 2], "tune_seed": 99, "metric": "abs_error",
        "methods": [{"name": "narrow", "options": {"width": 2}, "role": "baseline"},
                    {"name": "wide", "options": {"width": 8}},
                    {"name": "wide-control", "options": {"width": 16}, "settings_from": "wide", "role": "control"},
                    {"name": "ridge", "knobs": ["lamda"], "trained": False}],
        "space": {"lr": {"low": 1e-3, "high": 1e-1}, "weight_decay": {"low": 1e-6, "high": 1e-3},
                  "lamda": {"low": 1e-4, "high": 1e2}},
        "tuning": {"trials": 4, "epochs": 6, "min_epochs": 2, "extra_trials": 2, "max_widenings": 1},
        "stopping": {"max_epochs": 40, "min_epochs": 6, "window": 0.25, "min_gain": 0.01},
        "schedule": {"kind": "cosine"},
    }
    values.update(changes)
    return StudySpec.from_dict(values)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    spec = _spec()
    app = ToyApp()
    results = run_study(spec, app, out, log=lambda text: None)
    return spec, out, app, results


def test_every_tuned_method_gets_the_same_trial_budget_and_seeds_differ(study):
    spec, out, app, results = study
    methods = results["cells"]["main"]["methods"]
    totals = {name: m["trials"]["total"] for name, m in methods.items() if m["settings_from"] is None}
    assert len(set(totals.values())) == 1 and totals["narrow"] >= spec.tuning.trials
    assert {seed for phase, _, seed in app.trained if phase == "tune"} == {spec.tune_seed}
    assert {seed for phase, _, seed in app.trained if phase == "final"} == set(spec.seeds)
    assert methods["wide-control"]["chosen"] == methods["wide"]["chosen"]  # a control reuses the point


def test_final_runs_stop_by_the_rule_and_record_their_status(study):
    spec, out, app, results = study
    for name, m in results["cells"]["main"]["methods"].items():
        if not m["trained"]:
            continue
        for run in m["runs"]:
            assert run["done"]
            conv = run["convergence"]
            assert len(run["curve"]) <= spec.stopping.max_epochs
            if conv["converged"]:  # stopped at the first epoch the rule held
                assert conv["stop_epoch"] == len(run["curve"])
            else:
                assert len(run["curve"]) == spec.stopping.max_epochs


def test_records_hold_every_per_sample_value_and_comparisons_count_seeds(study):
    spec, out, app, results = study
    n_test = 32
    trained = [m for m in spec.methods if m.trained]
    assert len(results["records"]) == (len(trained) * len(spec.seeds) + 1) * n_test
    comps = {(c["method"], c["baseline"]): c for c in results["cells"]["main"]["comparisons"]}
    assert set(comps) == {("wide", "narrow"), ("wide-control", "narrow"), ("ridge", "narrow")}
    wide = comps[("wide", "narrow")]["result"]
    assert wide["n_seeds"] == 3 and wide["n_samples"] == n_test and wide["low"] <= wide["estimate"] <= wide["high"]
    # the estimate is the ratio of the means over seeds and samples of the stored per-sample values
    per = {m: np.array([[r["value"] for r in results["records"] if r["method"] == m and r["seed"] == s]
                        for s in spec.seeds]) for m in ("wide", "narrow")}
    assert wide["estimate"] == pytest.approx(per["wide"].mean() / per["narrow"].mean())
    # an untrained method (one evaluation) is paired with every seed of the baseline
    assert comps[("ridge", "narrow")]["result"]["n_seeds"] == 3


def test_untrained_method_tunes_on_validation_and_its_choice_is_best_of_its_trials(study):
    spec, out, app, results = study
    ridge = results["cells"]["main"]["methods"]["ridge"]
    assert ridge["trials"]["total"] >= spec.tuning.trials and ridge["runs"][0]["done"]
    tuning = json.loads((out / "tuning" / "main.json").read_text())["methods"]["ridge"]
    values = [t["value"] for t in tuning["trials"] if t["state"] == "COMPLETE"]
    assert tuning["value"] == min(values)


def test_a_rerun_resumes_to_the_same_results_without_training_again(study, tmp_path):
    spec, out, app, results = study
    again = ToyApp()
    rerun = run_study(spec, again, out, log=lambda text: None)
    assert again.trained == []
    assert rerun["records"] == results["records"]


def test_a_killed_final_run_resumes_to_the_uninterrupted_result(study, tmp_path):
    spec, out, app, results = study
    run_dir = out / "runs" / "final" / "main" / "wide" / "seed-1"
    curve = read_values(run_dir, "val_mse")
    # an interrupted copy: the same study in a new folder, stopped after 3 epochs of that run
    other = tmp_path / "study"
    import shutil

    shutil.copytree(out, other)
    victim = other / "runs" / "final" / "main" / "wide" / "seed-1"
    shutil.rmtree(victim)
    app2 = ToyApp()
    original_train = app2.train

    def interrupted(request, callback):
        if request.run_dir == victim and not (victim / "last.pt").exists():
            request.stop_after = 3
        original_train(request, callback)
    app2.train = interrupted
    from common.study.runner import RunRequest, final_unit, train_final

    method = spec.method("wide")
    params = results["cells"]["main"]["methods"]["wide"]["chosen"]
    request = RunRequest(spec, {}, method, params, 1, victim, spec.stopping.max_epochs, "final", device="cpu")
    train_final(app2, spec, request)  # stopped after 3 epochs: "killed"
    assert len(read_values(victim, "val_mse")) == 3
    rerun = run_study(spec, app2, other, log=lambda text: None)
    assert read_values(victim, "val_mse") == curve
    assert rerun["records"] == results["records"]


def test_a_run_evaluated_after_a_stop_the_rule_no_longer_makes_is_reopened_and_continued(study, tmp_path):
    """A final run that stopped early and was evaluated (as under an earlier stopping rule) is trained on from
    its last epoch and evaluated again: the study ends with the uninterrupted study's records."""
    import shutil

    from common.study.runner import RunRequest, final_unit

    spec, out, app, results = study
    other = tmp_path / "study"
    shutil.copytree(out, other)
    victim = other / "runs" / "final" / "main" / "narrow" / "seed-0"
    shutil.rmtree(victim)
    (other / "results.json").unlink()
    params = results["cells"]["main"]["methods"]["narrow"]["chosen"]
    request = RunRequest(spec, {}, spec.method("narrow"), params, 0, victim, spec.stopping.max_epochs, "final",
                         device="cpu", stop_after=spec.stopping.min_epochs)
    final_unit(ToyApp(), spec, request)  # stopped at min_epochs, evaluated there
    assert len(read_values(victim, "val_mse")) == spec.stopping.min_epochs and (victim / "test.json").exists()
    again = ToyApp()
    rerun = run_study(spec, again, other, log=lambda text: None)
    assert again.trained == [("final", "narrow", 0)]
    assert rerun["records"] == results["records"]


def test_a_folder_holding_another_spec_is_refused(study):
    spec, out, app, results = study
    with pytest.raises(RunExistsError, match="another spec"):
        run_study(_spec(seeds=[0, 1, 2, 3]), ToyApp(), out, log=lambda text: None)
    # a folder made before a spec field existed reads that field as its default: the same study
    stored = json.loads((out / "spec.json").read_text())
    del stored["stopping"]["min_lr_factor"]
    (out / "spec.json").write_text(json.dumps(stored))
    assert run_study(spec, ToyApp(), out, log=lambda text: None)["status"]["complete"]
    # how it is executed is not what it is: another device / job count resumes the same study
    again = ToyApp()
    assert run_study(spec.replace(device="cpu", jobs=1), again, out, log=lambda text: None)["status"]["complete"]
    assert again.trained == []


def test_report_states_intervals_bracketing_and_convergence(study, tmp_path):
    spec, out, app, results = study
    text = markdown(results, command="python run.py toy study")
    assert "two-level 95 %" in text and "wide vs narrow" in text and "converged" in text
    assert "python run.py toy study" in text
    paths = write_report(results, tmp_path, "toy")
    assert all(p.exists() and p.stat().st_size > 0 for p in paths.values())
    # the tuning figure holds every finished trial, and the report links it
    assert paths["tuning_png"].name == "toy_tuning.png" and "(toy_tuning.png)" in paths["md"].read_text()
    for name, m in results["cells"]["main"]["methods"].items():
        assert len(m["trial_points"]) == m["trials"]["total"], name
    untuned = {**results, "cells": {"main": {**results["cells"]["main"], "ranges": {}}}}
    assert "tuning_png" not in write_report(untuned, tmp_path / "untuned", "toy")
    # two deterministic methods compared: one "seed" each, so no seed-level interval, and the report says why
    import copy

    from common.stats import compare_methods

    cell = copy.deepcopy(results)["cells"]["main"]
    ridge = cell["methods"]["ridge"]["runs"][0]["per_sample"]["abs_error"]
    shifted = [v * 1.1 for v in ridge]
    cell["comparisons"] = [{"method": "ridge", "baseline": "ridge", "metric": "abs_error", "goal": None,
                            "goal_met": None, "result": compare_methods([shifted], [ridge], "ratio")}]
    text = markdown({**results, "cells": {"main": cell}})
    row = next(line for line in text.splitlines() if line.startswith("| ridge vs ridge"))
    assert "1.1" in row and "| – |" in row and "deterministic methods" in row and "nan" not in row
    assert json.loads(paths["json"].read_text())["records"] == results["records"]


def test_plan_counts_trials_and_runs_and_estimates_hours():
    spec = _spec()
    rows = {r["method"]: r for r in plan(spec, {("main", "narrow"): 2.0}).rows}
    max_trials = spec.tuning.trials + spec.tuning.max_widenings * spec.tuning.extra_trials
    assert rows["narrow"]["trials"] == max_trials and rows["wide-control"]["trials"] == 0
    assert rows["narrow"]["finals"] == 3 and rows["ridge"]["finals"] == 1 and rows["ridge"]["final_epochs"] == 0
    expected = (max_trials * spec.tuning.epochs + 3 * spec.stopping.max_epochs) * 2.0 / 3600
    assert rows["narrow"]["hours"] == pytest.approx(expected)
    assert rows["wide"]["hours"] is None and math.isfinite(rows["narrow"]["hours"])
    text = plan(spec, {("main", m.name): 2.0 for m in spec.methods if m.trained}).text()
    assert "total ≤" in text and "untrained methods are not in the hours" in text  # ridge: no epochs, not free


def test_expected_trial_epochs_under_successive_halving():
    from common.study.runner import expected_trial_epochs

    # rungs 5, 15, 45, then the cap 50: all trials reach 5, 1/3 reach 15, 1/9 reach 45, 1/27 reach 50
    spec = _spec(tuning={"trials": 20, "epochs": 50, "min_epochs": 5, "reduction": 3})
    assert expected_trial_epochs(spec) == pytest.approx(5 + 10 / 3 + 30 / 9 + 5 / 27)
    assert expected_trial_epochs(_spec(tuning={"trials": 2, "epochs": 7, "pruner": "none"})) == 7


def test_two_worker_processes_give_the_results_of_one(study, tmp_path):
    """Methods tune side by side and final runs train in parallel: each unit depends on its own history
    only, so the records and choices equal the single-process study's."""
    spec, out, app, results = study
    parallel = run_study(spec.replace(jobs=2), ToyApp(), tmp_path / "parallel", log=lambda text: None)
    assert parallel["records"] == results["records"]
    for name, method in results["cells"]["main"]["methods"].items():
        assert parallel["cells"]["main"]["methods"][name]["chosen"] == method["chosen"], name


def test_a_partial_study_reports_what_it_holds_and_says_what_is_missing(study, tmp_path):
    """Collected mid-way (the tuning summary not yet written, one final run unfinished), a study reports each
    method's best trial so far from the Optuna storage, the finished seeds only, and lists what is missing."""
    import shutil

    from common.study.results import collect

    spec, out, app, results = study
    other = tmp_path / "study"
    shutil.copytree(out, other)
    (other / "results.json").unlink()
    (other / "tuning" / "main.json").unlink()  # killed after the last trial, before the summary
    (other / "runs" / "final" / "main" / "wide" / "seed-2" / "test.json").unlink()
    partial = collect(spec, other, ToyApp.val_metric)
    cell = partial["cells"]["main"]
    assert cell["tuning"] == "in progress" and partial["status"]["tuning_in_progress"] == ["main"]
    assert not partial["status"]["complete"] and partial["status"]["missing"] == ["main/wide/seed-2"]
    finished = results["cells"]["main"]
    for name, method in cell["methods"].items():  # the storage holds the finished history: the same choices
        assert method["chosen"] == finished["methods"][name]["chosen"], name
        assert method["trials"] == finished["methods"][name]["trials"], name
    assert cell["methods"]["wide"]["summary"]["abs_error"]["n_seeds"] == 2
    assert cell["tuning_target"] == spec.tuning.trials + cell["widenings"] * spec.tuning.extra_trials
    assert partial["status"]["unbracketed"] == []  # provisional choices are not judged
    text = markdown(partial)
    assert "**Partial result**: 1 final run(s) not finished (main/wide/seed-2); tuning still under way" in text
    assert "provisional" in text and "| so far: lr: " in text
    assert "- tuning of cell `main` not finished" in text and "- 1 final run(s) not finished" in text
    # nothing tuned yet: no choices, every final run missing, and nothing created in the folder
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "spec.json").write_text(json.dumps(spec.to_dict()))
    nothing = collect(spec, empty, ToyApp.val_metric)
    assert nothing["cells"]["main"]["tuning"] == "not started" and not (empty / "tuning.sqlite3").exists()
    assert len(nothing["status"]["missing"]) == 3 * len(spec.seeds) + 1 and "main/ridge" in nothing["status"]["missing"]
    assert "| – |" in markdown(nothing)


def test_trial_counts_are_the_finished_budget_and_failed_trials_are_counted_apart(study, tmp_path):
    import shutil

    import optuna

    from common.study.results import collect
    from common.study.tuning import open_study

    spec, out, app, results = study
    other = tmp_path / "study"
    shutil.copytree(out, other)
    (other / "tuning" / "main.json").unlink()
    storage = f"sqlite:///{(other / 'tuning.sqlite3').resolve()}"
    killed = open_study(spec, "main", "wide", storage)
    killed.tell(killed.ask(), state=optuna.trial.TrialState.FAIL)
    cell = collect(spec, other, ToyApp.val_metric)["cells"]["main"]
    before = results["cells"]["main"]["methods"]["wide"]["trials"]
    assert cell["methods"]["wide"]["trials"] == {**before, "failed": before["failed"] + 1}
    assert before["total"] == before["complete"] + before["pruned"]
    assert " + 1 failed" in markdown(collect(spec, other, ToyApp.val_metric))
