"""kill -9 at random moments, then resume: generation and training end exactly where an uninterrupted
run ends (datasets compared array by array; checkpoints tensor by tensor).

Each case starts `python run.py …` with subprocess.Popen, SIGKILLs it after a seeded random delay (a
few times), reruns it (generation: the same command; training: with --resume) until it finishes, and
compares with a run that was never interrupted. Tiny sizes; most of each case's time is the start-up
of the Python processes (torch import).
"""
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}


def _run(argv, timeout=300) -> float:
    """Run `python run.py argv` to the end; returns its wall time in seconds."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "run.py", *argv], cwd=ROOT, env=ENV, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return time.perf_counter() - start


def _wait_for(process, ready, timeout=120):
    """Poll until `ready()`, the process ends, or `timeout` seconds pass."""
    start = time.perf_counter()
    while process.poll() is None and not ready() and time.perf_counter() - start < timeout:
        time.sleep(0.01)


def _kill_then_finish(argv, resume_argv, seed, duration, started, kills=2, finished=None):
    """Start argv, SIGKILL it `kills` times (rerunning resume_argv), then finish it unless `finished()` says a
    rerun already completed it. It must hit a running process, or the test would not test an interruption.

    A kill timed from the process start missed on CI (start-up time varies from process to process, and the
    reference run paid a cold start the later ones did not), so each kill waits for `started()` (the first
    checkpoint, or the first output file, exists) and then lands within the first fifth of the time the
    uninterrupted run had left at that point: past start-up and before the end."""
    rng = random.Random(seed)
    command, killed = argv, 0
    for _ in range(kills):
        process = subprocess.Popen([sys.executable, "run.py", *command], cwd=ROOT, env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        began = time.perf_counter()
        _wait_for(process, started)
        time.sleep(rng.uniform(0.0, 0.2) * max(0.0, duration - (time.perf_counter() - began)))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
        command = resume_argv
    assert killed, "every run finished before its kill: make the case bigger"
    if finished is None or not finished():
        _run(resume_argv)


def _same_h5(a, b, skip_attrs=("code_version", "created", "device")):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        names_a, names_b = [], []
        fa.visit(names_a.append)
        fb.visit(names_b.append)
        assert sorted(names_a) == sorted(names_b)
        for name in names_a:
            if isinstance(fa[name], h5py.Dataset):
                np.testing.assert_array_equal(fa[name][()], fb[name][()], err_msg=f"{a}:{name}")
        for key in set(fa.attrs) - set(skip_attrs):
            assert np.array_equal(np.asarray(fa.attrs[key]), np.asarray(fb.attrs.get(key))), key


@pytest.mark.timeout(300)
@pytest.mark.parametrize("seed", [0])
def test_pde_generation_killed_and_rerun_equals_an_uninterrupted_run(tmp_path, seed):
    options = ["data", "ns-tiny", "--n", "8", "--res", "32", "--gen-res", "32", "--dt", "0.002", "--batch-size", "1",
               "--quiet", "--out"]
    duration = _run(options + [str(tmp_path / "ref.h5")])
    out = str(tmp_path / "killed.h5")
    _kill_then_finish(options + [out], options + [out], seed, duration, Path(out + ".partial").exists,
                      finished=Path(out).exists)
    assert not Path(out + ".partial").exists()
    _same_h5(tmp_path / "ref.h5", out)


@pytest.mark.timeout(300)
def test_mri_generation_killed_and_rerun_equals_an_uninterrupted_run(tmp_path):
    options = ["data", "mri-sim", "--preset", "tiny", "--shape", "32", "32", "--slices", "2", "--quiet", "--out"]
    duration = _run(options + [str(tmp_path / "ref")])
    out = tmp_path / "killed"
    _kill_then_finish(options + [str(out)], options + [str(out)], seed=1, duration=duration,
                      started=lambda: out.exists() and any(out.iterdir()))
    scans = sorted(p.name for p in (tmp_path / "ref").glob("*.h5"))
    assert scans and scans == sorted(p.name for p in out.glob("*.h5"))
    for name in scans:
        _same_h5(tmp_path / "ref" / name, out / name)


def _same_checkpoint(a, b):
    ca, cb = torch.load(a, weights_only=True), torch.load(b, weights_only=True)
    assert ca["epoch"] == cb["epoch"]
    assert ca["model"].keys() == cb["model"].keys()
    for key in ca["model"]:
        torch.testing.assert_close(ca["model"][key], cb["model"][key], rtol=0, atol=0, msg=key)


@pytest.fixture(scope="module")
def ns_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("ns") / "ns.h5"
    _run(["data", "ns-tiny", "--n", "6", "--res", "16", "--gen-res", "16", "--dt", "0.25", "--quiet", "--out", str(path)])
    return path


@pytest.mark.timeout(400)
def test_pde_training_killed_and_resumed_equals_an_uninterrupted_run(tmp_path, ns_file):
    options = ["pde", "train", str(ns_file), "--epochs", "4", "--batch-size", "2", "--n-modes", "4,4",
               "--hidden-channels", "8", "--no-progress", "--out"]
    duration = _run(options + [str(tmp_path / "ref")])
    out = str(tmp_path / "killed")
    _kill_then_finish(options + [out], options + [out, "--resume"], seed=2, duration=duration, kills=1,
                      started=(Path(out) / "last.pt").exists)
    _same_checkpoint(tmp_path / "ref" / "last.pt", Path(out) / "last.pt")


@pytest.fixture(scope="module")
def mri_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("mri")
    _run(["data", "mri-sim", "--preset", "tiny", "--shape", "32", "32", "--slices", "2", "--quiet", "--out", str(path)])
    return path


@pytest.mark.timeout(400)
@pytest.mark.parametrize("validation", [False, True], ids=["no-val", "val"])
def test_mri_training_killed_and_resumed_equals_an_uninterrupted_run(tmp_path, mri_dir, validation):
    options = ["mri", "train", "--data", str(mri_dir), "--model", "msense", "--scale", "tiny", "--epochs", "3",
               "--batch-size", "1", "--device", "cpu", "--quiet", "--run-name", "run"]
    if validation:
        options += ["--val-scans", "SIM_001"]
    duration = _run(options + ["--out", str(tmp_path / "ref")])
    out = tmp_path / "killed"
    _kill_then_finish(options + ["--out", str(out)], options + ["--out", str(out), "--resume"], seed=3,
                      duration=duration, kills=1, started=(out / "run" / "last.pt").exists)
    _same_checkpoint(tmp_path / "ref" / "run" / "last.pt", out / "run" / "last.pt")


def _tiny_study_spec(tmp_path, dataset) -> Path:
    """A two-method PDE study small enough to run three times in a test (JSON spec file)."""
    import json

    from pde.experiments.study_presets import PRESETS

    spec = PRESETS["pde-smoke"]().to_dict()
    spec["problem"].pop("generate")
    spec["problem"]["dataset"] = str(dataset)
    spec["methods"] = [m for m in spec["methods"] if m["name"] in ("fft", "monarch")]
    spec["comparisons"] = [c for c in spec["comparisons"] if c["method"] == "monarch"]
    spec["tuning"].update(trials=3, epochs=3, max_widenings=0)
    spec["stopping"].update(max_epochs=4, min_epochs=3)
    path = tmp_path / "study.json"
    path.write_text(json.dumps(spec))
    return path


@pytest.mark.timeout(600)
def test_pde_study_killed_in_tuning_and_in_final_runs_resumes_to_the_uninterrupted_results(tmp_path):
    """SIGKILL a study while a tuning trial trains (Optuna leaves it RUNNING) and again while a final run
    trains; the rerun ends with the same tuning choices and the same per-sample test values."""
    import json

    dataset = tmp_path / "burgers.h5"
    _run(["data", "burgers-tiny", "--n", "40", "--res", "64", "--quiet", "--out", str(dataset)])
    spec = _tiny_study_spec(tmp_path, dataset)
    command = ["pde", "study", str(spec), "--out"]
    _run(command + [str(tmp_path / "ref")])
    out = tmp_path / "killed"
    stages = [lambda: any((out / "runs" / "tune").rglob("metrics.jsonl")),
              lambda: any((out / "runs" / "final").rglob("metrics.jsonl"))]
    killed = 0
    for ready in stages:
        process = subprocess.Popen([sys.executable, "run.py", *command, str(out)], cwd=ROOT, env=ENV,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(process, ready)
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        process.wait()
    assert killed == 2, "a stage finished before its kill: make the case bigger"
    _run(command + [str(out)])
    ref, got = (json.loads((folder / "results.json").read_text()) for folder in (tmp_path / "ref", out))
    assert got["records"] == ref["records"]
    for name, method in ref["cells"]["main"]["methods"].items():
        assert got["cells"]["main"]["methods"][name]["chosen"] == method["chosen"], name
