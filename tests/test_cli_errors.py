"""Bad inputs end in one readable line, never a traceback: a table of ≥ 30 mistakes a user can make.

Command-line cases run `run.main(argv)` in-process (fast) and expect exit status 2, an ``error: …``
line naming the problem on stderr, no "Traceback" and no raw library text. API cases expect the
project's exception type (common.errors, or ValueError from monarch_core, which imports nothing of
ours) with a message naming the problem.
"""
import re

import h5py
import numpy as np
import pytest
import scipy.io
import torch

import run
from common.errors import CheckpointError, ConfigError, FormatError, NonFiniteError

RAW_LIBRARY_TEXT = ("Unable to synchronously", "Unable to open file", "PytorchStreamReader", "invalid load key",
                    "ZeroDivisionError", "chunk dimensions must be positive", "Errno")


class WritesAFile:
    """A pickle whose unpickling creates a file: loading it must refuse, not run it."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Small good and bad inputs, made once: a tiny NS dataset, a tiny MRI folder, broken files."""
    root = tmp_path_factory.mktemp("bad-inputs")
    assert run.main(["data", "ns-tiny", "--n", "6", "--res", "16", "--gen-res", "16", "--dt", "0.25", "--quiet",
                     "--out", str(root / "ns.h5")]) == 0
    from mri.data.presets import PRESETS
    from mri.data.simulate import simulate_dataset

    simulate_dataset(PRESETS["tiny"].replace(shape=(32, 32), slices=2), root / "mri", progress=False)
    good = (root / "ns.h5").read_bytes()
    (root / "truncated.h5").write_bytes(good[:len(good) // 2])
    (root / "empty.h5").write_bytes(b"")
    (root / "junk.h5").write_text("not a dataset at all\n" * 10)
    (root / "ns.h5.partial").write_bytes(good)
    u = np.random.default_rng(0).normal(size=(3, 8, 8, 4))
    u[1, 2, 3, 0] = np.nan
    scipy.io.savemat(root / "nan.mat", {"a": u[..., 0], "u": u, "t": np.arange(4.0)[None]})
    (root / "bad.mat").write_bytes(b"MATLAB 5.0 MAT-file" + b"\0" * 50)
    torch.save({"x": torch.zeros(2, 1), "y": torch.zeros(2, 1), "evil": WritesAFile(root / "pwned-pt")},
               root / "evil.pt")
    torch.save({"model": {"w": torch.zeros(1)}, "evil": WritesAFile(root / "pwned-ckpt")}, root / "evil-ckpt.pt")
    torch.save({"x": torch.zeros(2)}, root / "good.pt")
    (root / "cut.pt").write_bytes((root / "good.pt").read_bytes()[:60])
    mri_cut = root / "mri-cut"
    mri_cut.mkdir()
    scan = (root / "mri" / "SIM_000.h5").read_bytes()
    (mri_cut / "SIM_000.h5").write_bytes(scan[:len(scan) // 3])
    (root / "results").mkdir()
    (root / "some.txt").write_text("keep me\n")
    (root / "foreign").mkdir()
    (root / "foreign" / "notes.txt").write_text("keep me too\n")
    return root


def cli(*argv):
    return lambda r: [a.format(r=r) for a in argv]


MRI_REFUSED_OUT = "{r}/o/mri-refused"


def mri_train(*extra):
    """`mri train` on the tiny MRI folder with one epoch and `extra` options, into MRI_REFUSED_OUT."""
    return cli("mri", "train", "--data", "{r}/mri", "--model", "msense", "--epochs", "1", "--scale", "tiny",
               "--device", "cpu", "--quiet", "--out", MRI_REFUSED_OUT, *extra)


# (id, argv built from the files fixture's folder {r}, regex the error output must contain)
CLI_CASES = [
    # run.py data (pde.data: this helper's code)
    ("data res 0", cli("data", "ns-tiny", "--res", "0", "--out", "{r}/o/x.h5"), r"--res must be an integer >= 2, got 0"),
    ("data res 48", cli("data", "ns-tiny", "--res", "48", "--out", "{r}/o/x.h5"), r"--res 48 must divide the generation grid"),
    ("data n 0", cli("data", "ns-tiny", "--n", "0", "--out", "{r}/o/x.h5"), r"--n must be an integer >= 1"),
    ("data n -5", cli("data", "burgers-tiny", "--n", "-5", "--out", "{r}/o/x.h5"), r"--n must be an integer >= 1"),
    ("data dt -1", cli("data", "ns-tiny", "--dt", "-1", "--out", "{r}/o/x.h5"), r"--dt must be a finite number > 0"),
    ("data batch 0", cli("data", "darcy-tiny", "--batch-size", "0", "--out", "{r}/o/x.h5"), r"--batch-size must be an integer >= 1"),
    ("data darcy res", cli("data", "darcy-tiny", "--res", "10", "--out", "{r}/o/x.h5"), r"--res 10 does not fit the Darcy node grid"),
    ("data odd gen-res", cli("data", "ns-tiny", "--gen-res", "33", "--res", "33", "--out", "{r}/o/x.h5"), r"--gen-res must be even"),
    ("data seed -1", cli("data", "ns-tiny", "--seed", "-1", "--out", "{r}/o/x.h5"), r"--seed must be an integer >= 0"),
    ("data device", cli("data", "ns-tiny", "--device", "tpu", "--out", "{r}/o/x.h5"), r"unknown device 'tpu'"),
    ("data cuda:7", cli("data", "ns-tiny", "--device", "cuda:7", "--out", "{r}/o/x.h5"),
     r"torch sees no CUDA device|device 'cuda:7' does not exist"),
    ("data exists", cli("data", "ns-tiny", "--n", "6", "--res", "16", "--gen-res", "16", "--dt", "0.25", "--out", "{r}/ns.h5"),
     r"ns.h5 already exists; pass --overwrite"),
    ("data unknown preset", cli("data", "ns-huge"), r"invalid choice: 'ns-huge'"),
    ("mri-sim coils 0", cli("data", "mri-sim", "--preset", "tiny", "--coils", "0", "--out", "{r}/o/s"), r"--coils"),
    # run.py pde (pde.experiments: the engine helper's code)
    ("pde train missing", cli("pde", "train", "{r}/missing.h5", "--out", "{r}/o/p1"), r"missing.h5: no such file"),
    ("pde train truncated", cli("pde", "train", "{r}/truncated.h5", "--out", "{r}/o/p2"), r"truncated.h5: truncated or corrupt"),
    ("pde train partial", cli("pde", "train", "{r}/ns.h5.partial", "--out", "{r}/o/p3"), r"unfinished generation"),
    ("pde train epochs 0", cli("pde", "train", "{r}/ns.h5", "--epochs", "0", "--out", "{r}/o/p4"), r"--epochs"),
    ("pde train batch 0", cli("pde", "train", "{r}/ns.h5", "--batch-size", "0", "--out", "{r}/o/p5"), r"--batch-size"),
    ("pde train lr -1", cli("pde", "train", "{r}/ns.h5", "--lr", "-1", "--out", "{r}/o/p6"), r"--lr"),
    ("pde train n-train", cli("pde", "train", "{r}/ns.h5", "--n-train", "100", "--out", "{r}/o/p7"), r"--n-train"),
    ("pde train t-in", cli("pde", "train", "{r}/ns.h5", "--t-in", "20", "--out", "{r}/o/p8"), r"t_in=20"),
    ("pde train sizes", cli("pde", "train", "{r}/ns.h5", "--transform", "monarch", "--monarch-sizes", "3,5", "--epochs", "1",
                            "--out", "{r}/o/p9"), r"sizes=\(3, 5\) do not factor"),
    ("pde train json", cli("pde", "train", "{r}/ns.h5", "--fno-kwargs", "{{bad", "--out", "{r}/o/p10"), r"--fno-kwargs"),
    ("pde eval missing", cli("pde", "eval", "{r}/missing.pt"), r"missing.pt: no such checkpoint"),
    ("pde eval evil", cli("pde", "eval", "{r}/evil-ckpt.pt"), r"evil-ckpt.pt: refused"),
    ("pde eval cut", cli("pde", "eval", "{r}/cut.pt"), r"cut.pt: truncated or corrupt"),
    ("pde compare kind", cli("pde", "compare", "{r}/ns.h5", "--transforms", "fft,wavelet", "--epochs", "1", "--out", "{r}/o/c1"),
     r"'wavelet'"),
    ("pde compare missing", cli("pde", "compare", "{r}/missing.h5", "--out", "{r}/o/c2"), r"missing.h5: no such file"),
    # run.py mri (mri.recon: the engine helper's code)
    ("mri train no data", cli("mri", "train", "--data", "{r}/nowhere", "--model", "msense", "--out", "{r}/o/m1"), r"nowhere"),
    ("mri train cut", cli("mri", "train", "--data", "{r}/mri-cut", "--model", "msense", "--out", "{r}/o/m2"),
     r"SIM_000.h5: truncated or corrupt"),
    ("mri train epochs 0", cli("mri", "train", "--data", "{r}/mri", "--model", "msense", "--epochs", "0", "--out", "{r}/o/m3"),
     r"--epochs"),
    ("mri train accel 0", cli("mri", "train", "--data", "{r}/mri", "--model", "msense", "--acceleration", "0",
                              "--out", "{r}/o/m4"), r"acceleration"),
    ("mri train batch 0", cli("mri", "train", "--data", "{r}/mri", "--model", "msense", "--batch-size", "0",
                              "--out", "{r}/o/m5"), r"--batch-size"),
    ("mri train echo", cli("mri", "train", "--data", "{r}/mri", "--model", "msense", "--echo", "3", "--out", "{r}/o/m6"),
     r"echo"),
    ("mri eval no run", cli("mri", "eval", "--run", "{r}/norun"), r"norun"),
    ("mri eval accel", cli("mri", "eval", "--model", "zf", "--data", "{r}/mri", "--acceleration", "5"), r"5"),
    ("mri compare no data", cli("mri", "compare", "--data", "{r}/nowhere", "--out", "{r}/o/mc"), r"nowhere"),
    ("mri compare accel", cli("mri", "compare", "--data", "{r}/mri", "--accelerations", "-2", "--n-train-scans", "1",
                              "--epochs", "1", "--out", "{r}/o/mc2"),
     r"accelerations?"),
    # issue 24: inputs a new user tried
    ("data out under file", cli("data", "ns-tiny", "--out", "{r}/some.txt/x.h5"), r"some.txt is a file, not a folder"),
    ("mri-sim out is file", cli("data", "mri-sim", "--preset", "tiny", "--out", "{r}/some.txt"),
     r"some.txt is a file; expected a folder"),
    ("mri-sim out foreign", cli("data", "mri-sim", "--preset", "tiny", "--out", "{r}/foreign"),
     r"non-empty folder that holds no simulated dataset"),
    ("data seed 2**70", cli("data", "ns-tiny", "--seed", str(2 ** 70), "--out", "{r}/o/x.h5"), r"--seed .*2\*\*63"),
    ("mri-sim seed 2**70", cli("data", "mri-sim", "--preset", "tiny", "--seed", str(2 ** 70), "--out", "{r}/o/s2"),
     r"--seed"),
    ("pde train seed 2**70", cli("pde", "train", "{r}/ns.h5", "--seed", str(2 ** 70), "--out", "{r}/o/p11"), r"--seed"),
    ("pde train modes -4", cli("pde", "train", "{r}/ns.h5", "--n-modes=-4,4", "--out", "{r}/o/p12"),
     r"--n-modes -4,4; expected integers ≥ 1"),
    ("pde train modes 0", cli("pde", "train", "{r}/ns.h5", "--n-modes", "0,0", "--out", "{r}/o/p13"),
     r"--n-modes 0,0; expected integers ≥ 1"),
    ("pde train modes big", cli("pde", "train", "{r}/ns.h5", "--n-modes", "64,64", "--out", "{r}/o/p14"),
     r"--n-modes 64,64 does not fit the grid"),
    # issue 24: mri train options, each refused before a run folder exists (test_mri_refusals_write_nothing)
    ("mri train lr inf", mri_train("--lr", "inf"), r"lr = inf; expected a finite number > 0"),
    ("mri train weight decay inf", mri_train("--weight-decay", "inf"), r"weight_decay = inf; expected a finite number"),
    ("mri train lr-gamma 0", mri_train("--lr-gamma", "0"), r"gamma = 0.0; expected a finite number > 0\nhint: pass --lr-gamma"),
    ("mri train accel nan", mri_train("--acceleration", "nan"), r"acceleration = nan.*expected an acceleration > 1"),
    ("mri train accel inf", mri_train("--acceleration", "inf"), r"acceleration = inf"),
    ("mri train accel 1", mri_train("--acceleration", "1"), r"acceleration = 1.0"),
    ("mri train n-train-scans 50", mri_train("--n-train-scans", "50"), r"has only \d+ training scans, 50 asked for"),
    ("mri train val scan unknown", mri_train("--val-scans", "NOPE"), r"--val-scans: .* has no scan\(s\) \['NOPE'\]; it has \['SIM_000'"),
    ("mri train train scan unknown", mri_train("--train-scans", "SIM_000", "NOPE"), r"--train-scans: .* has no scan\(s\) \['NOPE'\]"),
    ("mri train echo -1", mri_train("--echo", "-1"), r"--echo -1; expected an echo index ≥ 0"),
    ("mri train workers -1", mri_train("--workers", "-1"), r"--workers -1; expected ≥ 0"),
    ("mri train seed -1", mri_train("--seed", "-1"), r"seed = -1; expected an integer in \[0, 2\*\*63\)"),
    ("mri train seed 2**70", mri_train("--seed", "1180591620717411303424"), r"expected an integer in \[0, 2\*\*63\)"),
    ("mri train steps 0", mri_train("--steps", "0"), r"--steps 0; expected an integer ≥ 1"),
    ("mri train channels -1", mri_train("--channels", "-1"), r"--channels -1; expected an integer ≥ 1"),
    ("mri train model step-size nan", mri_train("--step-size", "nan"), r"--step-size nan; expected a finite number > 0"),
    ("mri train mask pool dir file", mri_train("--masks", "random", "--mask-pool", "2", "--mask-pool-dir", "{r}/some.txt"), r"--mask-pool-dir .*some.txt is a file; expected a folder"),
    ("mri eval out under file", cli("mri", "eval", "--model", "zf", "--data", "{r}/mri", "--acceleration", "4",
                                    "--device", "cpu", "--out", "{r}/some.txt/eval.json"),
     r"cannot make the folder .*some.txt: .*some.txt is a file, not a folder"),
    ("mri train out under file", cli("mri", "train", "--data", "{r}/mri", "--model", "msense", "--epochs", "1",
                                     "--out", "{r}/some.txt/runs"), r"--out .*some.txt is a file, not a folder"),
    ("study --partial alone", cli("mri", "study", "mri-smoke", "--out", "{r}/o/s1", "--partial"),
     r"--partial only qualifies --report-only\nhint: add --report-only"),
    ("study report of an unfinished study", cli("pde", "study", "pde-smoke", "--out", "{r}/o/s2", "--report-only"),
     r"holds no results.json: the study has not finished\nhint: .*pass --partial"),
    ("study partial report of no study", cli("pde", "study", "pde-smoke", "--out", "{r}/o/s3", "--report-only", "--partial"),
     r"s3 holds no study\nhint: pass the study folder with --out"),
]


def _params(cases):
    return [pytest.param(*case[1:], id=case[0]) for case in cases]


def _run_main(argv):
    try:
        return run.main(argv)
    except SystemExit as exit_:  # argparse errors
        return exit_.code


@pytest.mark.timeout(120)
@pytest.mark.parametrize("make_argv, message", _params(CLI_CASES))
def test_command_line_mistakes_exit_2_with_one_readable_line(files, capsys, make_argv, message):
    assert _run_main(make_argv(files)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    assert re.search(message, err), err
    assert not any(text in err for text in RAW_LIBRARY_TEXT), err
    assert "error: " in err


def _load(name, **kwargs):
    from pde.data.readers import load_dataset

    return lambda r: load_dataset(r / name, **kwargs)


def _skmtea(folder, **kwargs):
    from mri.data.skmtea import SkmTeaSlices

    def read(r):
        ds = SkmTeaSlices(r / folder, **kwargs)
        return [ds[i] for i in range(len(ds))]
    return read


def _fastmri(name):
    from mri.data.fastmri import FastMRISlices

    return lambda r: FastMRISlices(r / name)


def _mc(fn):
    return lambda r: fn()


def _monarch():
    import monarch_core as mc

    x16, w = torch.randn(2, 16), torch.randn(4, 4, 4)
    return [
        ("multiply mismatched x", _mc(lambda: mc.monarch_multiply(torch.randn(2, 15), w, w)), ValueError,
         r"x has shape \(2, 15\) .* expect x of shape \(\.\.\., 16\)"),
        ("multiply 2-D factor", _mc(lambda: mc.monarch_multiply(x16, torch.randn(4, 4), w)), ValueError, r"must be 3-D"),
        ("multiply incompatible factors", _mc(lambda: mc.monarch_multiply(x16, w, torch.randn(3, 4, 4))), ValueError,
         r"incompatible Monarch factors"),
        ("multiply backend", _mc(lambda: mc.monarch_multiply(x16, w, w, backend="magic")), ValueError, r"backend must be"),
        ("adjoint mismatched", _mc(lambda: mc.monarch_multiply_adjoint(torch.randn(2, 15), w, w)), ValueError,
         r"y has shape \(2, 15\)"),
        ("LearnableDFT n=0", _mc(lambda: mc.LearnableDFT(0)), ValueError, r"n=0"),
        ("LearnableDFT kind", _mc(lambda: mc.LearnableDFT(16, kind="wavelet")), ValueError, r"'wavelet'"),
        ("LearnableDFT prime", _mc(lambda: mc.LearnableDFT(13, kind="monarch")), ValueError, r"n=13 .* prime"),
        ("project rectangular", _mc(lambda: mc.project(torch.randn(4, 6))), ValueError, r"square matrix .*\(4, 6\)"),
        ("project sizes", _mc(lambda: mc.project(torch.randn(16, 16), sizes=(3, 5))), ValueError, r"sizes=\(3, 5\)"),
        ("dft norm", _mc(lambda: mc.dft_matrix(8, norm="weird")), ValueError, r"norm must be one of"),
        ("MonarchLinear 0", _mc(lambda: mc.MonarchLinear(10, 0)), ValueError, r"out=0"),
    ]


API_CASES = [
    ("load missing", _load("missing.h5"), FormatError, r"missing.h5: no such file"),
    ("load empty", _load("empty.h5"), FormatError, r"empty.h5: empty file .*truncated or corrupt — re-copy or regenerate it"),
    ("load truncated", _load("truncated.h5"), FormatError, r"truncated.h5: truncated or corrupt — re-copy or regenerate it"),
    ("load junk", _load("junk.h5"), FormatError, r"junk.h5: not a recognised dataset"),
    ("load partial", _load("ns.h5.partial"), FormatError, r"ns.h5.partial: incomplete file, an unfinished generation"),
    ("load nan", _load("nan.mat"), FormatError, r"nan.mat: key '(a|u)' holds NaN or Inf, first in sample 1"),
    ("load bad mat", _load("bad.mat"), FormatError, r"bad.mat: truncated or corrupt"),
    ("load evil pt", _load("evil.pt"), FormatError, r"evil.pt: refused"),
    ("load cut pt", _load("cut.pt"), FormatError, r"cut.pt: truncated or corrupt"),
    ("load n=0", _load("ns.h5", n=0), FormatError, r"n must be a positive integer"),
    ("skmtea truncated", _skmtea("mri-cut"), FormatError, r"SIM_000.h5: truncated or corrupt — re-copy or regenerate it"),
    ("skmtea echo", _skmtea("mri", echo=5), ConfigError, r"echo=5 asked for"),
    ("skmtea acceleration", _skmtea("mri", acceleration=7), FormatError, r"no 'masks/poisson_7.0x'"),
    ("fastmri empty", _fastmri("empty.h5"), FormatError, r"empty.h5: truncated or corrupt"),
    ("fastmri junk", _fastmri("junk.h5"), FormatError, r"junk.h5: truncated or corrupt"),
]


@pytest.mark.parametrize("call, error, message",
                         [pytest.param(*c[1:], id=c[0]) for c in API_CASES + _monarch()])
def test_api_mistakes_raise_the_projects_errors(files, call, error, message):
    with pytest.raises(error) as raised:
        call(files)
    text = str(raised.value)
    assert re.search(message, text), text
    assert not any(raw in text for raw in RAW_LIBRARY_TEXT), text


def test_a_malicious_checkpoint_is_refused_without_running_it(files, capsys):
    from common.checkpoints import load_checkpoint

    with pytest.raises(CheckpointError, match="refused"):
        load_checkpoint(files / "evil-ckpt.pt")
    assert _run_main(["pde", "eval", str(files / "evil-ckpt.pt")]) == 2
    assert "refused" in capsys.readouterr().err
    assert not (files / "pwned-ckpt").exists() and not (files / "pwned-pt").exists()


def test_debug_shows_the_traceback_and_interrupts_exit_130(files, capsys, monkeypatch):
    # (`run.py report`, the earlier vehicle of these two tests, was removed with the old PDE protocol)
    assert _run_main(["pde", "eval", str(files / "missing.pt")]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        run.main(["pde", "eval", str(files / "missing.pt"), "--debug"])

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    import pde.experiments.evaluation

    monkeypatch.setattr(pde.experiments.evaluation, "evaluate", interrupted)
    assert run.main(["pde", "eval", str(files / "good.pt")]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_bug_keeps_its_traceback(files, monkeypatch):
    import pde.experiments.evaluation

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug, not a user error")

    monkeypatch.setattr(pde.experiments.evaluation, "evaluate", bug)
    with pytest.raises(ZeroDivisionError):
        run.main(["pde", "eval", str(files / "good.pt")])


def test_the_table_is_large_enough():
    assert len(CLI_CASES) + len(API_CASES) + len(_monarch()) >= 30


def test_refused_outputs_lose_nothing(files, capsys):
    """The issue-24 refusals leave the user's file and folder exactly as they were."""
    for argv in (["data", "ns-tiny", "--out", f"{files}/some.txt/x.h5"],
                 ["data", "mri-sim", "--preset", "tiny", "--out", f"{files}/some.txt"],
                 ["data", "mri-sim", "--preset", "tiny", "--out", f"{files}/foreign"]):
        assert _run_main(argv) == 2
    assert (files / "some.txt").read_text() == "keep me\n"
    assert sorted(p.name for p in (files / "foreign").iterdir()) == ["notes.txt"]


def test_a_single_test_sample_says_why_there_is_no_standard_error(files, capsys, tmp_path):
    """`pde train` with one test sample: the summary says "(n=1)" instead of printing "± nan"."""
    code = run.main(["pde", "train", str(files / "ns.h5"), "--n-train", "5", "--n-val", "1", "--n-test", "1",
                     "--epochs", "1", "--batch-size", "2", "--n-modes", "4,4", "--hidden-channels", "4",
                     "--t-in", "2", "--t-out", "1", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")])
    out = capsys.readouterr().out
    assert code == 0 and "(n=1)" in out and "nan" not in out.lower()


def test_training_on_a_dataset_too_small_for_a_test_split_is_refused_before_any_file(tmp_path, capsys):
    """A 2-sample file (the generator's default split leaves no test sample) used to end in a torch.cat
    traceback after training; now: exit 2, one line, no run folder."""
    assert run.main(["data", "ns-tiny", "--n", "2", "--res", "16", "--gen-res", "16", "--dt", "0.25", "--quiet",
                     "--out", str(tmp_path / "ns2.h5")]) == 0
    capsys.readouterr()
    code = _run_main(["pde", "train", str(tmp_path / "ns2.h5"), "--epochs", "1", "--n-modes", "4,4",
                      "--hidden-channels", "4", "--device", "cpu", "--no-progress", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and "no test samples" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def _step_just_above(bound, interval):
    """(refused, accepted): the record interval split into m and m+1 equal steps around `bound`, so the
    solver takes exactly the step given (record_schedule shrinks any other step to one of these)."""
    import math

    m = math.floor(interval / bound)
    return interval / m, interval / (m + 1)


@pytest.mark.timeout(120)
def test_navier_stokes_dt_just_above_the_cfl_bound_is_refused_before_any_file(tmp_path, capsys):
    from pde.data.navier_stokes import max_stable_dt
    from pde.data.presets import configure

    preset = configure("ns-tiny", n=4, res=16, gen_res=32)
    bound, _ = max_stable_dt({**preset.params, "gen_res": 32, "res": 16}, 0, 4)
    # Independent check of the bound's scale: Δx / max(|u|+|v|) with the speed this flow really reaches
    # (0.21 measured along the trajectory at 32², ν = 1e-3, T = 7.5) must not be tighter than the bound.
    assert 1 / (32 * 0.21) > bound > 0.05
    refused, accepted = _step_just_above(bound, 0.5)
    assert refused > bound >= accepted
    base = ["data", "ns-tiny", "--n", "4", "--res", "16", "--gen-res", "32", "--quiet"]
    assert _run_main(base + ["--dt", repr(refused), "--out", str(tmp_path / "o" / "bad.h5")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"error: --dt \S+ is above the stable bound .* advective CFL", err), err
    assert re.search(r"hint: pass --dt 0\.\d+ or less", err), err
    assert not (tmp_path / "o").exists()
    assert _run_main(base + ["--dt", repr(accepted), "--out", str(tmp_path / "ok.h5")]) == 0


def test_dt_beyond_the_record_interval_names_the_step_taken(files, capsys):
    """--dt 100 (the issue's case) is shrunk to the 0.5 record interval, which still breaks the CFL bound."""
    assert _run_main(["data", "ns-tiny", "--dt", "100", "--out", f"{files}/o/dt100.h5"]) == 2
    err = capsys.readouterr().err
    assert "--dt 100 (the step taken after fitting it to the record times: 0.5)" in err, err
    assert not (files / "o" / "dt100.h5").exists() and not (files / "o" / "dt100.h5.partial").exists()


def test_burgers_dt_above_the_shock_width_cfl_bound_is_refused(tmp_path, capsys):
    from pde.data.burgers import max_stable_dt
    from pde.data.grf import PeriodicGRF, sample_generators
    from pde.data.presets import configure

    preset = configure("burgers-tiny", n=4)
    bound, _ = max_stable_dt({**preset.params, "gen_res": 256, "res": 256}, 0, 4)
    u0 = PeriodicGRF(1, 256, alpha=2.0, tau=5.0, sigma=25.0).sample(sample_generators(0, 0, 4), dtype=torch.float64)
    assert bound == pytest.approx(2 * 0.1 / float(u0.abs().max()) ** 2)
    refused, accepted = _step_just_above(bound, 1.0)
    base = ["data", "burgers-tiny", "--n", "4", "--quiet"]
    assert _run_main(base + ["--dt", repr(refused), "--out", str(tmp_path / "bad.h5")]) == 2
    assert "shock width" in capsys.readouterr().err and not (tmp_path / "bad.h5").exists()
    assert _run_main(base + ["--dt", repr(accepted), "--out", str(tmp_path / "ok.h5")]) == 0


@pytest.mark.parametrize("name", ["ns-tiny", "burgers-tiny", "darcy-tiny", "burgers", "burgers-1024",
                                  pytest.param("ns-v1e-3", marks=pytest.mark.slow),
                                  pytest.param("ns-v1e-4", marks=pytest.mark.slow),
                                  pytest.param("ns-v1e-5", marks=pytest.mark.slow)])
def test_every_presets_default_step_is_within_its_bound(name):
    from pde.data.presets import PRESETS, check_time_step

    check_time_step(PRESETS[name])  # raises ConfigError when the preset's own Δt broke its bound


def test_a_solver_that_diverges_inside_the_cfl_bound_ends_in_one_line(tmp_path, capsys):
    """ν = 1e-5 at 32², T = 10, Δt = 0.05: inside the CFL bound (≈ 0.10) but the explicit nonlinear term
    diverges (the bound is necessary, not sufficient); the writer's finite check gives one line, no traceback."""
    from pde.data.navier_stokes import max_stable_dt
    from pde.data.presets import configure

    preset = configure("ns-v1e-5", n=1, res=32, gen_res=32, t_final=10.0, record_steps=1, dt=0.05, batch_size=1)
    assert max_stable_dt({**preset.params, "gen_res": 32, "res": 32}, 0, 1)[0] > 0.05
    from pde.data.presets import generate

    with pytest.raises(NonFiniteError, match="the solver diverged") as raised:
        generate(preset, tmp_path / "nan.h5", progress=False)
    assert "smaller --dt" in raised.value.hint and not (tmp_path / "nan.h5").exists()


def _with_field_dtype(files, tmp_path, dtype, key="u", scale=1.0):
    """A copy of the tiny NS file whose `key` is stored as `dtype` (values × scale, then cast)."""
    out = tmp_path / f"ns-{np.dtype(dtype).name}.h5"
    out.write_bytes((files / "ns.h5").read_bytes())
    with h5py.File(out, "r+") as handle:
        values = handle[key][()] * scale
        if np.dtype(dtype).kind == "c":
            values = values + 1j * values
        del handle[key]
        handle.create_dataset(key, data=values.astype(dtype))
    return out


TINY_TRAIN = ["--epochs", "1", "--batch-size", "2", "--n-modes", "4,4", "--hidden-channels", "4", "--t-in", "2",
              "--t-out", "1", "--device", "cpu", "--no-progress"]


@pytest.mark.parametrize("dtype, key, scale, message", [
    ("complex64", "u", 1.0, r"key 'u' is complex \(complex64\); the FNO trains on real fields"),
    ("complex128", "a", 1.0, r"key 'a' is complex \(complex128\)"),
    ("bool", "u", 1.0, r"key 'u' is not numeric \(bool\)"),
    ("int64", "u", 1e8, r"key 'u' holds integers \(int64\) up to \d+, beyond 2\*\*24"),
])
def test_pde_train_refuses_fields_a_real_float32_model_cannot_take(files, tmp_path, capsys, dtype, key, scale, message):
    path = _with_field_dtype(files, tmp_path, dtype, key, scale)
    assert _run_main(["pde", "train", str(path), *TINY_TRAIN, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


@pytest.mark.timeout(120)
def test_float16_and_int_fields_are_converted_with_a_note_and_eval_refuses_complex(files, tmp_path, capsys):
    """float16 → float32 and small ints → float32 are exact, so they train, with a note saying so; the same
    checkpoint evaluated on a complex copy of the data is refused in one line."""
    half = _with_field_dtype(files, tmp_path, "float16")
    assert run.main(["pde", "train", str(half), *TINY_TRAIN, "--out", str(tmp_path / "run16")]) == 0
    out = capsys.readouterr().out
    assert "note: " in out and "key 'u' is float16; converted to float32 (exact)" in out, out
    ints = _with_field_dtype(files, tmp_path, "int32", scale=1000.0)
    from pde.data.readers import check_field_dtypes, load_dataset

    data = load_dataset(ints)
    raw = data["u"].copy()
    notes = check_field_dtypes(data, ints)
    assert data["u"].dtype == np.float32 and np.array_equal(data["u"], raw.astype(np.float64))  # exact
    assert notes == [f"{ints}: key 'u' holds integers (int32); converted to float32 (exact)"]
    complex_path = _with_field_dtype(files, tmp_path, "complex64")
    assert _run_main(["pde", "eval", str(tmp_path / "run16" / "best.pt"), "--dataset", str(complex_path),
                      "--device", "cpu", "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert "is complex (complex64)" in err and "Traceback" not in err, err


def test_mri_refusals_write_nothing(files, capsys):
    """Every refused `mri train` case of the table ends before its run folder (or any parent) exists."""
    cases = [case for case in CLI_CASES if MRI_REFUSED_OUT.format(r=files) in case[1](files)]
    assert len(cases) >= 15
    for name, make_argv, _ in cases:
        assert _run_main(make_argv(files)) == 2, name
        assert not (files / "o" / "mri-refused").exists(), name
    capsys.readouterr()


def test_mri_model_step_size_and_lr_step_size_are_separate_options():
    """--step-size (the unrolled net's initial gradient step) and --lr-step-size (StepLR) used to share one
    argparse dest, so either set both."""
    from mri.recon.cli import _model_kwargs
    from mri.recon.training import TrainConfig
    from common.config_cli import options_from_args

    args = run.build_parser().parse_args(["mri", "train", "--model", "msense", "--lr-step-size", "5"])
    assert options_from_args(args, TrainConfig)["step_size"] == 5 and "step_size" not in _model_kwargs(args)
    args = run.build_parser().parse_args(["mri", "train", "--model", "msense", "--step-size", "0.5"])
    assert options_from_args(args, TrainConfig)["step_size"] is None and _model_kwargs(args) == {"step_size": 0.5}


@pytest.mark.parametrize("relative", ["some.txt/x.json", "some.txt/deeper/x.json", "some.txt"])
def test_atomic_writes_under_a_file_raise_one_line(files, relative):
    """atomic_path makes the destination's folder: when a file stands where a folder must be (the parent
    itself, or one of its parents) that is a ConfigError naming the file, not mkdir's OS error."""
    from common.files import make_folder, write_json_atomic

    target = files / relative / "x.json" if relative == "some.txt" else files / relative
    with pytest.raises(ConfigError, match=r"some.txt is a file, not a folder") as raised:
        write_json_atomic(target, {"a": 1})
    assert "outside" in raised.value.hint
    lines = run.user_error_lines(raised.value)
    assert lines[0].startswith("error: cannot make the folder") and len(lines) == 2 and lines[1].startswith("hint:")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        make_folder(files / "some.txt")
    assert (files / "some.txt").read_text() == "keep me\n"
    assert make_folder(files / "o" / "made" / "here").is_dir()  # the ordinary case still makes folders
