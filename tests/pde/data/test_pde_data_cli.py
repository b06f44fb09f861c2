"""run.py wiring: one `data` sub-command per preset, and `bench data`; options checked before any file exists."""
import json
import re

import h5py
import numpy as np
import pytest

import run
from pde.data.presets import PRESETS
from pde.data.readers import load_dataset


def test_every_preset_is_a_data_subcommand():
    parser = run.build_parser()
    for name in PRESETS:
        args = parser.parse_args(["data", name, "--n", "3", "--seed", "1"])
        assert args.preset == name and args.n == 3 and args.seed == 1
    args = parser.parse_args(["bench", "data", "--dt-study", "--study-res", "32"])
    assert args.dt_study and args.study_res == 32


def test_data_command_writes_the_requested_file(tmp_path):
    out = tmp_path / "ns.h5"
    assert run.main(["data", "ns-tiny", "--n", "2", "--res", "16", "--gen-res", "32", "--dt", "0.1", "--out", str(out)]) == 0
    data = load_dataset(out)
    assert data["a"].shape == (2, 16, 16) and data["u"].shape == (2, 16, 16, 15)
    assert np.allclose(data["t"], np.arange(1, 16) * 0.5)


BAD_OPTIONS = [
    (["ns-tiny", "--res", "0"], r"--res must be an integer >= 2, got 0"),
    (["ns-tiny", "--res", "48"], r"--res 48 must divide the generation grid --gen-res 64.*\[2, 4, 8, 16, 32, 64\]"),
    (["ns-tiny", "--n", "0"], r"--n must be an integer >= 1, got 0"),
    (["ns-tiny", "--n", "-3"], r"--n must be an integer >= 1, got -3"),
    (["ns-tiny", "--gen-res", "33", "--res", "33"], r"--gen-res must be even"),
    (["ns-tiny", "--dt", "-0.1"], r"--dt must be a finite number > 0"),
    (["ns-tiny", "--dt", "nan"], r"--dt must be a finite number > 0"),
    (["ns-tiny", "--batch-size", "0"], r"--batch-size must be an integer >= 1"),
    (["ns-tiny", "--seed", "-1"], r"--seed must be an integer >= 0"),
    (["burgers-tiny", "--res", "100"], r"--res 100 must divide the generation grid --gen-res 256"),
    (["darcy-tiny", "--res", "10"], r"--res 10 does not fit the Darcy node grid --gen-res 29.*\[3, 5, 8, 15, 29\]"),
    (["darcy-tiny", "--res", "2"], r"--res must be an integer >= 3"),
    (["ns-tiny", "--device", "tpu"], r"unknown device 'tpu'"),
]


@pytest.mark.parametrize("argv, message", BAD_OPTIONS, ids=[" ".join(a) for a, _ in BAD_OPTIONS])
def test_bad_options_are_refused_before_any_file_exists(tmp_path, capsys, argv, message):
    out = tmp_path / "sub" / "data.h5"
    assert run.main(["data", *argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err) and err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "sub").exists()  # nothing created, not even the folder


def _write_partial(path, params):
    with h5py.File(path, "w") as f:  # what the old writer left behind after `--res 0` failed in h5py
        f.attrs.update({"format": "monarch-sciml/pde", "generator_params": json.dumps(params, sort_keys=True),
                        "n_samples": 40, "completed": 0, "complete": False})


SMALL = ["--n", "2", "--res", "16", "--gen-res", "16", "--dt", "0.25", "--quiet"]


def test_a_stale_partial_of_a_run_that_could_never_work_is_replaced(tmp_path, capsys):
    out = tmp_path / "ns.h5"
    stale = {"equation": "navier_stokes_2d", "seed": 0, "n_samples": 40, "gen_res": 64, "res": 0, "visc": 1e-3,
             "t_final": 7.5, "dt": 5e-3, "record_steps": 15, "alpha": 2.5, "tau": 7.0, "package_version": "0.1.0"}
    _write_partial(tmp_path / "ns.h5.partial", stale)
    assert run.main(["data", "ns-tiny", *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "replacing stale" in printed and "--res must be an integer >= 2, got 0" in printed
    assert load_dataset(out)["a"].shape == (2, 16, 16)


def test_an_unreadable_partial_is_replaced_and_a_valid_other_run_is_refused(tmp_path, capsys):
    out = tmp_path / "ns.h5"
    (tmp_path / "ns.h5.partial").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)  # cut off at the start
    assert run.main(["data", "ns-tiny", *SMALL, "--out", str(out)]) == 0
    assert "cannot be opened" in capsys.readouterr().out and out.exists()
    # a .partial of another run that could finish is someone's work: refused, with the way out
    valid = {"equation": "navier_stokes_2d", "seed": 5, "n_samples": 2, "gen_res": 16, "res": 16, "visc": 1e-3,
             "t_final": 7.5, "dt": 0.25, "record_steps": 15, "alpha": 2.5, "tau": 7.0, "package_version": "x"}
    _write_partial(tmp_path / "other.h5.partial", valid)
    assert run.main(["data", "ns-tiny", *SMALL, "--out", str(tmp_path / "other.h5")]) == 2
    err = capsys.readouterr().err
    assert "different parameters" in err and "hint: rerun with the file's parameters" in err
    assert run.main(["data", "ns-tiny", *SMALL, "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
