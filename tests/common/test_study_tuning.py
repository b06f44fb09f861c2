"""common.study.tuning on a synthetic problem with a known optimum: the validation loss is a quadratic
in log10(lr) (and in log10(transform lr) for the method that has one), decaying with the epochs.
Tuning finds the optimum, an optimum outside the initial range is found after automatic widening,
every method gets the same number of trials, and a study killed mid-trial (SIGKILL) resumes to the same
trial history."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from common.errors import ConfigError
from common.study import StudySpec
from common.study.tuning import edge_of, position, tune

ROOT = Path(__file__).resolve().parents[2]


def make_spec(low=1e-4, high=1e-1, trials=16, widenings=2, pruner="successive-halving"):
    return StudySpec.from_dict({
        "name": "toy", "application": "toy", "tune_seed": 99,
        "methods": [{"name": "a", "knobs": ["lr"]}, {"name": "b", "knobs": ["lr", "transform_lr"]}],
        "space": {"lr": {"low": low, "high": high}, "transform_lr": {"low": 1e-5, "high": 1e-1}},
        "tuning": {"trials": trials, "epochs": 9, "min_epochs": 1, "extra_trials": 6, "max_widenings": widenings,
                   "pruner": pruner}})


def objective_for(best_lr, best_tlr=1e-3, kill_at=None):
    calls = {"n": 0}

    def objective(params, report):
        calls["n"] += 1
        loss = (math.log10(params["lr"]) - math.log10(best_lr)) ** 2
        if "transform_lr" in params:
            loss += 0.5 * (math.log10(params["transform_lr"]) - math.log10(best_tlr)) ** 2
        best = math.inf
        for epoch in range(9):
            if kill_at is not None and calls["n"] == kill_at and epoch == 0:
                os.kill(os.getpid(), 9)  # a SIGKILL in the middle of a trial
            value = loss + 1.0 / (epoch + 1)
            best = min(best, value)
            if report(epoch, value):
                raise optuna.TrialPruned()
        return best
    return objective


def finished(result, method):
    return sum(t["state"] in ("COMPLETE", "PRUNED") for t in result["methods"][method]["trials"])


def test_tuning_finds_a_known_interior_optimum_with_equal_budgets(tmp_path):
    spec = make_spec(trials=20)
    result = tune(spec, "main", {"a": objective_for(3e-3), "b": objective_for(3e-3, 1e-3)},
                  f"sqlite:///{tmp_path / 'optuna.db'}")
    assert result["rounds"] == 0 and finished(result, "a") == finished(result, "b") == 20
    assert any(t["state"] == "PRUNED" for t in result["methods"]["a"]["trials"])  # multi-fidelity at work
    chosen = result["methods"]["a"]["chosen"]["lr"]
    assert abs(math.log10(chosen) - math.log10(3e-3)) < 0.35
    assert result["methods"]["a"]["bracketing"] == {"lr": "interior"}
    assert abs(math.log10(result["methods"]["b"]["chosen"]["transform_lr"]) + 3) < 0.6


def test_an_optimum_outside_the_range_is_bracketed_after_widening(tmp_path):
    spec = make_spec(low=1e-3, high=1e-1, trials=12, widenings=3)
    result = tune(spec, "main", {"a": objective_for(2e-5), "b": objective_for(2e-5)},
                  f"sqlite:///{tmp_path / 'optuna.db'}")
    assert result["rounds"] >= 2 and result["ranges"]["lr"][0] <= 1e-5 + 1e-12
    assert result["ranges"]["lr"][1] == pytest.approx(1e-1)  # only the side that was hit moves
    assert finished(result, "a") == finished(result, "b") == 12 + 6 * result["rounds"]
    for method in ("a", "b"):
        assert result["methods"][method]["bracketing"]["lr"] == "interior"
        assert abs(math.log10(result["methods"][method]["chosen"]["lr"]) - math.log10(2e-5)) < 0.5


def test_a_categorical_knob_is_searched_with_the_same_budget_and_never_widened(tmp_path):
    """An optimum at the low edge of lr widens lr; the categorical knob beside it finds its known best choice,
    is reported as categorical (no edge), and round-trips through the spec and the stored ranges."""
    spec = StudySpec.from_dict({**make_spec(low=1e-3, high=1e-1, trials=16, widenings=1).to_dict(),
                                "methods": [{"name": "a", "knobs": ["lr"]}, {"name": "b", "knobs": ["lr", "family"]}],
                                "space": {"lr": {"low": 1e-3, "high": 1e-1},
                                          "family": {"choices": ["haar", "db4", "sym4"]}}})
    assert StudySpec.from_dict(spec.to_dict()) == spec
    penalty = {"haar": 0.8, "db4": 0.0, "sym4": 0.4}
    plain = objective_for(2e-4)

    def with_family(params, report):
        assert params["family"] in penalty
        return plain({"lr": params["lr"]}, lambda epoch, value: report(epoch, value + penalty[params["family"]])) \
            + penalty[params["family"]]

    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    result = tune(spec, "main", {"a": plain, "b": with_family}, storage)
    assert result["rounds"] == 1 and finished(result, "a") == finished(result, "b") == 16 + 6
    assert result["ranges"] == {"lr": [pytest.approx(1e-4), pytest.approx(1e-1)],
                                "family": {"choices": ["haar", "db4", "sym4"]}}
    assert result["methods"]["b"]["chosen"]["family"] == "db4"
    assert result["methods"]["b"]["bracketing"]["family"] == "categorical"
    assert {t["params"]["family"] for t in result["methods"]["b"]["trials"]} == set(penalty)
    again = tune(spec, "main", {"a": plain, "b": with_family}, storage)  # resumed: the stored ranges read back
    assert again["ranges"] == result["ranges"] and again["methods"] == result["methods"]
    with pytest.raises(ConfigError, match="at least 2 distinct"):
        StudySpec.from_dict({**spec.to_dict(), "space": {"lr": {"low": 1e-3, "high": 1e-1},
                                                         "family": {"choices": ["haar"]}}})


def test_edges_on_the_log_scale():
    knob = make_spec().space["lr"]
    assert position(1e-4, knob) == pytest.approx(0) and position(1e-1, knob) == pytest.approx(1)
    assert edge_of(1.5e-4, knob, 0.1) == "low" and edge_of(8e-2, knob, 0.1) == "high" and edge_of(3e-3, knob, 0.1) is None


SCRIPT = """
import json, sys
sys.path.insert(0, {root!r})
sys.path.insert(0, {tests!r})
from test_study_tuning import make_spec, objective_for
from common.study.tuning import tune
kill = None if sys.argv[2] == "none" else int(sys.argv[2])
result = tune(make_spec(trials=8, widenings=0), "main", {{"a": objective_for(3e-3, kill_at=kill),
              "b": objective_for(3e-3)}}, "sqlite:///" + sys.argv[1])
print(json.dumps(result))
"""


def history(result):
    return {m: [(t["params"], t["value"], t["state"]) for t in r["trials"] if t["state"] != "FAIL"]
            for m, r in result["methods"].items()}


def test_a_study_killed_mid_trial_resumes_to_the_same_history(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(SCRIPT.format(root=str(ROOT), tests=str(Path(__file__).parent)))

    def run(db, kill):
        done = subprocess.run([sys.executable, str(script), str(db), kill], capture_output=True, text=True)
        return done

    reference = run(tmp_path / "ref.db", "none")
    assert reference.returncode == 0, reference.stderr
    killed = run(tmp_path / "killed.db", "5")
    assert killed.returncode == -9  # died in trial 5 of method a
    resumed = run(tmp_path / "killed.db", "none")
    assert resumed.returncode == 0, resumed.stderr
    ref, res = json.loads(reference.stdout), json.loads(resumed.stdout)
    assert history(res) == history(ref)
    assert [t["state"] for t in res["methods"]["a"]["trials"]].count("FAIL") == 1  # the killed trial, rerun
