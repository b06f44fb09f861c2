"""load_dataset: generate → write → read round trips in every supported format, splits, and errors."""
import h5py
import numpy as np
import pytest
import scipy.io
import torch

from common.errors import FormatError
from pde.data.presets import configure, generate
from pde.data.readers import DatasetFormatError, load_dataset, train_test_split


@pytest.fixture(scope="module")
def ns(tmp_path_factory):
    path = tmp_path_factory.mktemp("ns") / "ns.h5"
    preset = configure("ns-tiny", n=4, res=16, gen_res=16, t_final=0.3, record_steps=3, dt=0.05)
    return load_dataset(generate(preset, path, seed=1, progress=False))


def _write_mat73(path, arrays):
    """A MATLAB v7.3 file as MATLAB writes it: 512-byte header block, column-major (reversed) axes."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for key, value in arrays.items():
            d = f.create_dataset(key, data=np.transpose(value))
            d.attrs["MATLAB_class"] = np.bytes_("single")
    with open(path, "r+b") as f:
        f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .".ljust(116))


def _same(a, b):
    assert set(a) == set(b)
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))


def test_project_hdf5(ns):
    assert ns.meta["format"] == "monarch-sciml" and ns.meta["equation"] == "navier_stokes_2d"
    assert ns["a"].shape == (4, 16, 16) and ns["u"].shape == (4, 16, 16, 3) and ns["t"].shape == (3,)
    assert isinstance(ns, dict) and all(isinstance(v, np.ndarray) for v in ns.values())
    assert load_dataset(ns.meta["path"], n=2)["u"].shape == (2, 16, 16, 3)


def test_fno_mat_v5_round_trip(ns, tmp_path):
    path = tmp_path / "ns.mat"
    scipy.io.savemat(path, {"a": ns["a"], "u": ns["u"], "t": ns["t"][None]})  # t is (1, T) in the published files
    back = load_dataset(path)
    assert back.meta["format"] == "mat-v5"
    _same(back, ns)
    burgers = {"a": np.random.default_rng(0).normal(size=(3, 32)), "u": np.random.default_rng(1).normal(size=(3, 32))}
    scipy.io.savemat(tmp_path / "b.mat", burgers)
    back = load_dataset(tmp_path / "b.mat", n=2)
    assert back.meta["equation"] == "burgers_1d"
    _same(back, {k: v[:2] for k, v in burgers.items()})


def test_fno_mat_v73_round_trip_reverses_axes(ns, tmp_path):
    path = tmp_path / "ns73.mat"
    _write_mat73(path, {"a": ns["a"], "u": ns["u"], "t": ns["t"][None]})
    with h5py.File(path) as f:
        assert f["u"].shape == (3, 16, 16, 4)  # as MATLAB stores it
    back = load_dataset(path)
    assert back.meta["format"] == "mat-v7.3"
    _same(back, ns)
    _same(load_dataset(path, n=3), {"a": ns["a"][:3], "u": ns["u"][:3], "t": ns["t"]})
    darcy = {"coeff": np.random.default_rng(2).uniform(3, 12, (2, 9, 9)), "sol": np.random.default_rng(3).normal(size=(2, 9, 9))}
    _write_mat73(tmp_path / "darcy.mat", darcy)
    back = load_dataset(tmp_path / "darcy.mat")
    assert back.meta["equation"] == "darcy_2d"
    _same(back, darcy)


def test_pdebench_layouts(ns, tmp_path):
    series = np.moveaxis(ns["u"], -1, 1)  # PDEBench: (N, T, x, y)
    grid = np.linspace(0, 1, 17)[:-1]
    with h5py.File(tmp_path / "2d.h5", "w") as f:
        f["tensor"] = series
        f["t-coordinate"] = np.concatenate([ns["t"], [0.4]])  # T+1 stamps, as some PDEBench files have
        f["x-coordinate"], f["y-coordinate"] = grid, grid
    back = load_dataset(tmp_path / "2d.h5")
    assert back.meta["format"] == "pdebench"
    _same(back, {"u": ns["u"], "t": ns["t"], "grid_x": grid, "grid_y": grid})
    rng = np.random.default_rng(4)
    with h5py.File(tmp_path / "1d.h5", "w") as f:
        f["tensor"] = rng.normal(size=(5, 7, 32)).astype(np.float32)
    assert load_dataset(tmp_path / "1d.h5")["u"].shape == (5, 32, 7)
    coeff, sol = rng.uniform(size=(3, 8, 8)), rng.normal(size=(3, 1, 8, 8))
    with h5py.File(tmp_path / "darcy.h5", "w") as f:
        f["nu"], f["tensor"] = coeff, sol
    _same(load_dataset(tmp_path / "darcy.h5"), {"coeff": coeff, "sol": sol[:, 0]})


def test_neuraloperator_pt_round_trip(ns, tmp_path):
    x, y = torch.from_numpy(ns["a"][:, None]), torch.from_numpy(ns["u"][..., -1][:, None])
    torch.save({"x": x, "y": y}, tmp_path / "pairs.pt")
    back = load_dataset(tmp_path / "pairs.pt")
    assert back.meta["format"] == "neuraloperator-pt"
    _same(back, {"x": x.numpy(), "y": y.numpy()})


def test_splits(ns):
    train, test = train_test_split(ns, 3, 1)
    np.testing.assert_array_equal(train["u"], ns["u"][:3])
    np.testing.assert_array_equal(test["a"], ns["a"][3:4])
    np.testing.assert_array_equal(test["t"], ns["t"])
    train, test = train_test_split(ns, 3, 1, test_first=True)  # PDEBench: first 10 % test
    np.testing.assert_array_equal(test["u"], ns["u"][:1])
    np.testing.assert_array_equal(train["u"], ns["u"][1:])
    with pytest.raises(ValueError, match="cannot take 4 train"):
        train_test_split(ns, 4, 1)


def test_errors_name_the_file_and_what_was_expected(ns, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello world" * 20)
    with pytest.raises(DatasetFormatError, match="junk.bin.*not a recognised"):
        load_dataset(junk)
    scipy.io.savemat(tmp_path / "k.mat", {"x": np.zeros((2, 4))})
    with pytest.raises(DatasetFormatError, match=r"k.mat.*keys \['x'\].*expected 'a', 'u'"):
        load_dataset(tmp_path / "k.mat")
    scipy.io.savemat(tmp_path / "s.mat", {"a": ns["a"], "u": ns["u"][:, :8], "t": ns["t"]})
    with pytest.raises(DatasetFormatError, match=r"s.mat.*'u' has shape \(4, 8, 16, 3\), expected"):
        load_dataset(tmp_path / "s.mat")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["velocity"] = np.zeros(3)
    with pytest.raises(DatasetFormatError, match=r"other.h5.*\['velocity'\]"):
        load_dataset(tmp_path / "other.h5")
    torch.save({"input": torch.zeros(2)}, tmp_path / "bad.pt")
    with pytest.raises(DatasetFormatError, match=r"bad.pt.*\['input'\].*'x' and 'y'"):
        load_dataset(tmp_path / "bad.pt")
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path / "missing.h5")


class _WritesAFile:
    """A pickle whose unpickling would create a file: must never run."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return (open, (self.target, "w"))


def _formats(ns, tmp_path):
    """{name: path} of one good file per format."""
    paths = {"project.h5": ns.meta["path"], "v5.mat": tmp_path / "v5.mat", "v73.mat": tmp_path / "v73.mat",
             "bench.h5": tmp_path / "bench.h5", "pairs.pt": tmp_path / "pairs.pt"}
    scipy.io.savemat(paths["v5.mat"], {"a": ns["a"], "u": ns["u"], "t": ns["t"][None]})
    _write_mat73(paths["v73.mat"], {"a": ns["a"], "u": ns["u"], "t": ns["t"][None]})
    with h5py.File(paths["bench.h5"], "w") as f:
        f["tensor"] = np.moveaxis(ns["u"], -1, 1)
    torch.save({"x": torch.from_numpy(ns["a"]), "y": torch.from_numpy(ns["u"])}, paths["pairs.pt"])
    return paths


@pytest.mark.parametrize("fraction", [0.0, 0.02, 0.5, 0.9])
def test_truncated_or_empty_files_in_every_format_are_format_errors(ns, tmp_path, fraction):
    for name, path in _formats(ns, tmp_path).items():
        data = open(path, "rb").read()
        cut = tmp_path / f"cut-{name}"
        cut.write_bytes(data[:int(len(data) * fraction)])
        with pytest.raises(FormatError) as err:
            load_dataset(cut)
        text = str(err.value)
        assert str(cut) in text, name
        assert "truncated or corrupt — re-copy or regenerate it" in text or "not a recognised" in text, (name, text)
        assert "Unable to" not in text and "synchronously" not in text, text  # no raw library text


def test_corrupt_bytes_inside_a_file_are_format_errors(ns, tmp_path):
    for name, path in _formats(ns, tmp_path).items():
        data = bytearray(open(path, "rb").read())
        data[len(data) // 3: len(data) // 3 + 64] = b"\xff" * 64  # scribble over metadata or payload
        bad = tmp_path / f"bad-{name}"
        bad.write_bytes(bytes(data))
        try:
            back = load_dataset(bad)
        except FormatError as err:
            assert str(bad) in str(err)
        else:  # the scribble hit raw sample data: still read, and then only if it is finite
            assert all(np.isfinite(v).all() for v in back.values() if v.dtype.kind == "f"), name


def test_non_finite_values_name_the_file_key_and_first_bad_sample(ns, tmp_path):
    u = ns["u"].copy()
    u[2, 3, 4, 1] = np.nan
    u[3, 0, 0, 0] = np.inf
    scipy.io.savemat(tmp_path / "nan.mat", {"a": ns["a"], "u": u, "t": ns["t"][None]})
    with pytest.raises(FormatError, match=r"nan.mat: key 'u' holds NaN or Inf, first in sample 2 \(2 bad samples of 4\)"):
        load_dataset(tmp_path / "nan.mat")
    assert np.isfinite(load_dataset(tmp_path / "nan.mat", n=2)["u"]).all()  # the first two samples are fine
    torch.save({"x": torch.tensor([[1.0], [float("inf")]]), "y": torch.zeros(2, 1)}, tmp_path / "inf.pt")
    with pytest.raises(FormatError, match=r"inf.pt: key 'x' .* first in sample 1"):
        load_dataset(tmp_path / "inf.pt")


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path):
    target = tmp_path / "pwned"
    torch.save({"x": torch.zeros(2, 1), "y": torch.zeros(2, 1), "z": _WritesAFile(target)}, tmp_path / "evil.pt")
    with pytest.raises(FormatError, match=r"evil.pt: refused .* run code"):
        load_dataset(tmp_path / "evil.pt")
    assert not target.exists()


def test_partial_files_missing_files_and_bad_n_are_refused(ns, tmp_path):
    partial = tmp_path / "ns.h5.partial"
    partial.write_bytes(open(ns.meta["path"], "rb").read())
    with pytest.raises(FormatError, match=r"ns.h5.partial: incomplete file, an unfinished generation"):
        load_dataset(partial)
    with pytest.raises(FormatError, match="missing.h5: no such file") as err:
        load_dataset(tmp_path / "missing.h5")
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(FormatError, match="n must be a positive integer"):
        load_dataset(ns.meta["path"], n=0)
    assert issubclass(DatasetFormatError, FormatError) and issubclass(DatasetFormatError, ValueError)
