"""common.study.snapshot: a study's portable state (no checkpoints of finished runs) resumes on a "new machine"
(another folder) to the results of the uninterrupted study, training only what was not finished; a run in flight
keeps its checkpoints and resumes mid-run; the Optuna storage is copied consistently; nothing is overwritten."""
import json
import sqlite3

import pytest

from common.errors import ConfigError, RunExistsError
from common.study.runner import RunRequest, read_values, run_study, train_final
from common.study.snapshot import restore, snapshot
from tests.common.test_study_runner import ToyApp, _spec

quiet = {"log": lambda text: None}


@pytest.fixture(scope="module")
def full(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    return run_study(_spec(), ToyApp(), out, **quiet), out


def _trials(db):
    with sqlite3.connect(db) as con:
        return sorted(con.execute("select number, state from trials").fetchall())


def test_a_snapshot_of_a_tuned_study_resumes_elsewhere_to_the_uninterrupted_results(full, tmp_path):
    results, _ = full
    spec = _spec()
    first = tmp_path / "machine-1"
    run_study(spec, ToyApp(), first, phases=("tune",), **quiet)  # the session ends after tuning
    # a final run in flight when the session ended: 3 epochs, with its checkpoints
    chosen = json.loads((first / "tuning" / "main.json").read_text())["methods"]["wide"]["chosen"]
    in_flight = first / "runs" / "final" / "main" / "wide" / "seed-1"
    request = RunRequest(spec, {}, spec.method("wide"), chosen, 1, in_flight, spec.stopping.max_epochs, "final",
                         device="cpu", stop_after=3)
    train_final(ToyApp(), spec, request)
    assert (in_flight / "last.pt").exists() and len(read_values(in_flight, "val_mse")) == 3

    state = tmp_path / "state"
    stats = snapshot(first, state)
    assert not list((state / "runs" / "tune").rglob("*.pt"))  # finished trials: curves only
    kept = sorted(p.name for p in (state / "runs" / "final").rglob("*.pt"))
    assert kept == ["best.pt", "last.pt"] and stats["checkpoints"] == 2
    assert _trials(state / "tuning.sqlite3") == _trials(first / "tuning.sqlite3")

    second = tmp_path / "machine-2"
    restore(state, second)
    app = ToyApp()
    rerun = run_study(spec, app, second, **quiet)
    assert {phase for phase, _, _ in app.trained} == {"final"}  # no tuning trial is run again
    assert rerun["records"] == results["records"]
    assert read_values(second / "runs" / "final" / "main" / "wide" / "seed-1", "val_mse") == \
        read_values(full[1] / "runs" / "final" / "main" / "wide" / "seed-1", "val_mse")


def test_finished_final_runs_leave_their_checkpoints_behind_and_the_report_needs_none(full, tmp_path):
    results, out = full
    state = tmp_path / "state"
    stats = snapshot(out, state)
    assert stats["checkpoints"] == 0 and stats["dropped_checkpoints"] > 0 and not list(state.rglob("*.pt"))
    second = tmp_path / "again"
    restore(state, second)
    app = ToyApp()
    assert run_study(_spec(), app, second, **quiet)["records"] == results["records"] and app.trained == []
    stats_again = snapshot(out, state)  # a newer snapshot replaces the older one in place
    assert stats_again["files"] == stats["files"] and not (tmp_path / "state.old").exists()


def test_bad_folders_are_refused_and_nothing_is_replaced(full, tmp_path):
    _, out = full
    with pytest.raises(ConfigError, match="not a study folder"):
        snapshot(tmp_path, tmp_path / "x")
    with pytest.raises(ConfigError, match="inside the study folder"):
        snapshot(out, out / "state")
    state = tmp_path / "state"
    snapshot(out, state)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(RunExistsError, match="not empty"):
        restore(state, busy)
    assert (busy / "notes.txt").read_text() == "mine"
    with pytest.raises(ConfigError, match="not a study snapshot"):
        restore(busy, tmp_path / "new")


def test_a_tuning_trial_in_flight_leaves_its_checkpoints_behind_and_restarts(full, tmp_path):
    results, _ = full
    spec = _spec()
    first = tmp_path / "machine-1"
    run_study(spec, ToyApp(), first, phases=("tune",), **quiet)
    trial = next((first / "runs" / "tune").rglob("trial.json")).parent
    (trial / "trial.json").unlink()  # as if killed mid-trial: its checkpoints are still there
    (trial / "last.pt").write_bytes(b"x")
    state = tmp_path / "state"
    assert snapshot(first, state)["checkpoints"] == 0 and not list(state.rglob("*.pt"))
    second = tmp_path / "machine-2"
    restore(state, second)
    assert run_study(spec, ToyApp(), second, **quiet)["records"] == results["records"]


def test_periodic_snapshots_run_beside_the_study_and_once_more_at_its_end(full, tmp_path):
    import time

    from common.study.snapshot import periodic_snapshots

    results, _ = full
    out, dest, said = tmp_path / "study", tmp_path / "state", []
    with periodic_snapshots(out, dest, 0.05, log=said.append):
        time.sleep(0.2)  # before the study made its folder: reported and retried, never raised
        run_study(_spec(), ToyApp(), out, **quiet)
    assert any("failed" in line for line in said) and said[-1].startswith("snapshot (final)")
    assert json.loads((dest / "results.json").read_text())["records"] == results["records"]
    with pytest.raises(KeyboardInterrupt), periodic_snapshots(out, tmp_path / "stopped", 60, log=said.append):
        raise KeyboardInterrupt  # Ctrl-C: the last state is still written
    assert (tmp_path / "stopped" / "spec.json").exists()


def test_cli_snapshot_every_needs_a_folder_and_positive_minutes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    for extra in (["--snapshot-every", "5"], ["--snapshot", str(tmp_path / "s"), "--snapshot-every", "0"]):
        done = subprocess.run([sys.executable, "run.py", "pde", "study", "pde-smoke", "--out", str(tmp_path / "o"),
                               *extra], cwd=root, capture_output=True, text=True, timeout=120)
        assert done.returncode != 0 and "expected minutes > 0 with --snapshot FOLDER" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and not (tmp_path / "o").exists()
