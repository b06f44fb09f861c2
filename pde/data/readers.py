"""Read PDE datasets — this project's HDF5 and the published formats — into one simple form.

`load_dataset(path)` recognises the file by its content (not its extension) and returns a
`PDEData`: a plain ``dict[str, numpy.ndarray]`` whose ``.meta`` attribute holds the file's
attributes. Arrays are in the orientation the FNO ``.mat`` files have once read by FNO's MatReader:

==================  ==========================================================================
equation            keys and shapes
==================  ==========================================================================
Navier–Stokes       ``a`` (N, S, S) initial vorticity, ``u`` (N, S, S, T), ``t`` (T,)
Burgers             ``a`` (N, S) initial data, ``u`` (N, S) solution at t = 1
Darcy               ``coeff`` (N, S, S), ``sol`` (N, S, S)
PDEBench series     ``u`` (N, S, [S,] T), ``t`` (T,), ``grid_x`` (S,) [, ``grid_y`` (S,)]
neuraloperator .pt  ``x``, ``y`` as stored (sample axis first)
==================  ==========================================================================

Formats: datasets/README.md. Splits: `train_test_split`.
"""
import pickle
import zipfile
from pathlib import Path

import numpy as np

from common.errors import FormatError, UserError

#: Keys that are not per-sample (they are copied into both halves of a split).
SHARED_KEYS = frozenset({"t", "grid_x", "grid_y"})

_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class PDEData(dict):
    """``dict[str, numpy.ndarray]`` with a ``meta`` dict: ``format`` (one of 'monarch-sciml',
    'mat-v5', 'mat-v7.3', 'pdebench', 'neuraloperator-pt'), ``equation`` (navier_stokes_2d,
    burgers_1d, darcy_2d, pdebench_series, pdebench_darcy or pairs), ``path`` and, for HDF5 files, the
    file attributes (``attrs``; this project's files carry generator_params, seed, n_train, n_test,
    code_version…)."""

    def __init__(self, arrays: dict, meta: dict):
        super().__init__(arrays)
        self.meta = meta

    def __reduce__(self):  # keep .meta through pickling / multiprocessing
        return (PDEData, (dict(self), self.meta))


class DatasetFormatError(FormatError):
    """A file that is not a recognised PDE dataset, is truncated or corrupt, holds non-finite values, or
    has missing keys or wrong shapes. (A `common.errors.FormatError`, hence also a ValueError.)"""


class DatasetNotFoundError(DatasetFormatError, FileNotFoundError):
    """The dataset file does not exist (also a FileNotFoundError, for callers that catch that)."""


CORRUPT = "truncated or corrupt — re-copy or regenerate it"

# What the libraries raise on a damaged file: h5py OSError/KeyError, scipy's MatReadError (a ValueError),
# zip and pickle errors from torch, EOF on a cut-off stream.
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, EOFError, IndexError,
                zipfile.BadZipFile, pickle.UnpicklingError, AttributeError)


def check_finite(arrays: dict, path) -> None:
    """DatasetFormatError naming the file, the key and the first sample (index along axis 0) holding
    NaN or Inf, for any floating-point array."""
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype.kind not in "fc" or np.isfinite(value).all():
            continue
        bad = ~np.isfinite(value.reshape(value.shape[0], -1) if value.ndim else value.reshape(1, 1))
        first = int(np.flatnonzero(bad.any(axis=1))[0])
        raise DatasetFormatError(f"{path}: key '{key}' holds NaN or Inf, first in sample {first} "
                                 f"({int(bad.any(axis=1).sum())} bad samples of {bad.shape[0]}) — regenerate "
                                 f"the file or drop those samples")


#: Largest integer magnitude float32 holds exactly (24-bit significand).
_FLOAT32_EXACT_INT = 2 ** 24


def check_field_dtypes(data: dict, path) -> list[str]:
    """Make the fields of `data` fit a real float32 model, in place, or refuse the file.

    Refused (DatasetFormatError): complex fields (a real model would silently drop the imaginary part) and
    integers beyond ±2**24 (not exact in float32); booleans are already refused by `load_dataset`. Converted to float32,
    with one note each in the returned list: float16 (exact: every float16 is a float32; the note says the
    data carry only float16 precision) and integers within ±2**24 (exact, e.g. a piecewise-constant
    coefficient stored as int). float32 / float64 pass silently (float64 → float32 is the models' usual
    cast of the published float64 .mat files).
    """
    notes = []
    for key, value in list(data.items()):
        dtype = np.asarray(value).dtype
        if dtype.kind == "c":
            raise DatasetFormatError(f"{path}: key '{key}' is complex ({dtype}); the FNO trains on real fields and "
                                     f"would drop the imaginary part",
                                     hint="store the real part, or the real and imaginary parts as separate fields")
        if dtype.kind in "iu":
            top = int(np.abs(np.asarray(value, dtype=np.int64)).max()) if np.size(value) else 0
            if top > _FLOAT32_EXACT_INT:
                raise DatasetFormatError(f"{path}: key '{key}' holds integers ({dtype}) up to {top}, beyond 2**24, "
                                         f"which float32 cannot hold exactly; expected a float field",
                                         hint="store the field as float32 (rescaled if need be)")
            data[key] = np.asarray(value, dtype=np.float32)
            notes.append(f"{path}: key '{key}' holds integers ({dtype}); converted to float32 (exact)")
        elif dtype == np.float16:
            data[key] = np.asarray(value, dtype=np.float32)
            notes.append(f"{path}: key '{key}' is float16; converted to float32 (exact), but the data carry only "
                         f"float16 precision (relative step 2**-11 ≈ 5e-4), which limits the error one can measure")
    return notes


def load_dataset(path, n: int | None = None) -> PDEData:
    """Read a PDE dataset file.

    Args:
        path: this project's HDF5, an FNO ``.mat`` (MATLAB v5 or v7.3), a PDEBench HDF5 or a
            neuraloperator ``.pt`` dictionary.
        n: read only the first `n` samples (HDF5 formats read no more than that from disk).

    Returns: `PDEData` (see the module docstring for keys and shapes).

    Raises: `DatasetNotFoundError` (also a FileNotFoundError); `DatasetFormatError` (a FormatError)
    naming the file and what was found and expected — for a truncated or corrupt file, an unfinished
    ``.partial``, NaN/Inf values (with the key and first bad sample) or a wrong layout.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file" + (" (it is a folder)" if path.is_dir() else ""),
                                   hint="give a dataset file, e.g. one written by `run.py data <preset>`")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise DatasetFormatError(f"n must be a positive integer number of samples to read, got {n!r}")
    if path.name.endswith(".partial"):
        raise DatasetFormatError(f"{path}: incomplete file, an unfinished generation (.partial); finish it with the same "
                                 f"`run.py data` command and read the file without .partial")
    with open(path, "rb") as handle:
        head = handle.read(128)
    if not head:
        raise DatasetFormatError(f"{path}: empty file (0 bytes) — {CORRUPT}")
    try:
        if head.startswith(b"MATLAB 5.0 MAT-file"):
            data = _read_mat_v5(path, n)
        elif head[:4] == b"PK\x03\x04" or head[:2] == b"\x80\x02":
            data = _read_pt(path, n)
        elif head.startswith((_HDF5_SIGNATURE, b"MATLAB 7.3 MAT-file")) or _is_hdf5(path):
            data = _read_hdf5(path, n, matlab=head.startswith(b"MATLAB 7.3 MAT-file"))
        else:
            raise DatasetFormatError(
                f"{path}: not a recognised dataset (header {head[:20]!r}); expected this project's HDF5, an FNO "
                f".mat (MATLAB v5 or v7.3), a PDEBench HDF5 or a neuraloperator .pt file (see datasets/README.md)")
    except UserError:  # already says what is wrong
        raise
    except _READ_ERRORS as err:  # the library's own text is kept in the chain (--debug), not the message
        raise DatasetFormatError(f"{path}: {CORRUPT} (reading it failed with {type(err).__name__})") from err
    check_finite(data, path)
    data.meta["path"] = str(path)
    return data


def train_test_split(data: dict, n_train: int, n_test: int, *, test_first: bool = False):
    """Split by count along the sample axis.

    FNO convention (default): the first `n_train` samples train, the next `n_test` test.
    PDEBench convention: ``test_first=True`` with ``n_test = N // 10`` — the first 10 % test, the rest train.
    Keys in `SHARED_KEYS` (t, grids) are copied to both halves. Returns (train, test), each a `PDEData`.
    """
    per_sample = {k: v for k, v in data.items() if k not in SHARED_KEYS}
    if not per_sample:
        raise ValueError("no per-sample arrays to split")
    counts = {k: v.shape[0] for k, v in per_sample.items()}
    total = min(counts.values())
    if n_train < 0 or n_test < 0 or n_train + n_test > total:
        where = getattr(data, "meta", {}).get("path", "the dataset")
        raise ValueError(f"{where}: cannot take {n_train} train + {n_test} test samples from {total} "
                         f"(sample counts {counts})")
    if test_first:
        test_slice, train_slice = slice(0, n_test), slice(n_test, n_test + n_train)
    else:
        train_slice, test_slice = slice(0, n_train), slice(n_train, n_train + n_test)
    meta = dict(getattr(data, "meta", {}))

    def take(part):
        arrays = {k: (v if k in SHARED_KEYS else v[part]) for k, v in data.items()}
        return PDEData(arrays, meta)

    return take(train_slice), take(test_slice)


# ----------------------------------------------------------------------------------------------
# recognising the equation and checking shapes

def _arrays_for_equation(found: dict, path, fmt: str):
    """Pick the equation from the keys present; return ({key: array}, equation)."""
    keys = set(found)
    if {"coeff", "sol"} <= keys:
        return {"coeff": found["coeff"], "sol": found["sol"]}, "darcy_2d"
    if {"a", "u"} <= keys:
        a = found["a"]
        if "t" in keys or np.ndim(a) == 3:
            arrays = {"a": a, "u": found["u"]}
            if "t" in keys:
                arrays["t"] = found["t"]
            return arrays, "navier_stokes_2d"
        return {"a": a, "u": found["u"]}, "burgers_1d"
    raise DatasetFormatError(
        f"{path}: {fmt} file with keys {sorted(keys)}; expected 'a', 'u' and 't' (Navier–Stokes), "
        f"'a' and 'u' (Burgers) or 'coeff' and 'sol' (Darcy)")


def _check(arrays: dict, equation: str, path):
    """Validate shapes; squeeze t; return arrays as float numpy arrays."""
    def fail(key, expected):
        found = {k: tuple(np.shape(v)) for k, v in arrays.items()}
        raise DatasetFormatError(f"{path}: {equation} key '{key}' has shape {found[key]}, expected {expected} "
                                 f"(shapes found: {found})")

    if "t" in arrays:
        arrays["t"] = np.asarray(arrays["t"]).reshape(-1)
    if equation == "navier_stokes_2d":
        a, u = arrays["a"], arrays["u"]
        if a.ndim != 3 or a.shape[1] != a.shape[2]:
            fail("a", "(N, S, S)")
        if u.ndim != 4 or u.shape[:3] != a.shape:
            fail("u", f"(N, S, S, T) = {a.shape + ('T',)}")
        if "t" in arrays and arrays["t"].shape != (u.shape[3],):
            fail("t", f"({u.shape[3]},) — one time per frame of u")
    elif equation == "burgers_1d":
        a, u = arrays["a"], arrays["u"]
        if a.ndim != 2:
            fail("a", "(N, S)")
        if u.shape != a.shape:
            fail("u", f"{a.shape} like a")
    elif equation == "darcy_2d":
        c, s = arrays["coeff"], arrays["sol"]
        if c.ndim != 3 or c.shape[1] != c.shape[2]:
            fail("coeff", "(N, S, S)")
        if s.shape != c.shape:
            fail("sol", f"{c.shape} like coeff")
    for key, value in arrays.items():
        if not np.issubdtype(value.dtype, np.number):
            raise DatasetFormatError(f"{path}: key '{key}' is not numeric ({value.dtype})")
    return arrays


def _first(array, n):
    return array if n is None else array[:n]


# ----------------------------------------------------------------------------------------------
# formats

def _is_hdf5(path) -> bool:
    import h5py

    return h5py.is_hdf5(path)


def _read_mat_v5(path, n):
    from scipy.io import loadmat

    raw = {k: v for k, v in loadmat(path).items() if not k.startswith("__")}
    arrays, equation = _arrays_for_equation(raw, path, "MATLAB v5 .mat")
    arrays = {k: (v if k == "t" else _first(v, n)) for k, v in arrays.items()}
    return PDEData(_check(arrays, equation, path), {"format": "mat-v5", "equation": equation})


def _read_hdf5(path, n, matlab: bool):
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
        datasets = {k: f[k] for k in f.keys() if isinstance(f[k], h5py.Dataset)}
        if attrs.get("format") == "monarch-sciml/pde":
            return _read_project(f, path, n, attrs)
        if matlab or any("MATLAB_class" in d.attrs for d in datasets.values()):
            return _read_mat_v73(datasets, path, n)
        if "tensor" in datasets:
            return _read_pdebench(f, path, n, attrs)
        raise DatasetFormatError(
            f"{path}: HDF5 file with top-level entries {sorted(f.keys())} and attributes {sorted(attrs)}; "
            f"expected this project's format (attribute format='monarch-sciml/pde'), an FNO MATLAB v7.3 .mat "
            f"(keys a/u/t, a/u or coeff/sol) or a PDEBench file with a 'tensor' dataset. PDEBench files that "
            f"store one group per sample or several fields (2D CFD, shallow water, diffusion-reaction) are "
            f"not supported.")


def _read_project(f, path, n, attrs):
    if not attrs.get("complete", False) or int(attrs.get("completed", 0)) < int(attrs.get("n_samples", 0)):
        raise DatasetFormatError(f"{path}: incomplete file ({attrs.get('completed')} of {attrs.get('n_samples')} "
                                 f"samples written); finish it with the same `run.py data` command")
    found = {k: (f[k][()] if k == "t" else f[k][slice(None) if n is None else slice(0, n)]) for k in f.keys()}
    equation = attrs.get("equation", "")
    arrays, detected = _arrays_for_equation(found, path, "monarch-sciml HDF5")
    if equation and detected != equation:
        raise DatasetFormatError(f"{path}: attribute equation={equation!r} but keys {sorted(found)} mean {detected}")
    return PDEData(_check(arrays, detected, path),
                   {"format": "monarch-sciml", "equation": detected, "attrs": attrs})


def _read_mat_v73(datasets, path, n):
    # MATLAB is column-major: h5py sees every array with its axes reversed, so reverse them back
    # (FNO's MatReader does the same). The sample axis is then the last one on disk.
    found = {}
    for key, d in datasets.items():
        if d.ndim >= 2 and n is not None and key != "t":
            index = (Ellipsis, slice(0, n))
            found[key] = np.transpose(d[index])
        else:
            found[key] = np.transpose(d[()])
    arrays, equation = _arrays_for_equation(found, path, "MATLAB v7.3 .mat")
    return PDEData(_check(arrays, equation, path), {"format": "mat-v7.3", "equation": equation})


def _read_pdebench(f, path, n, attrs):
    rows = slice(None) if n is None else slice(0, n)
    tensor = f["tensor"][rows]
    meta = {"format": "pdebench", "attrs": attrs}
    if "nu" in f:  # Darcy: nu [N, x, y] coefficient, tensor [N, 1, x, y] solution
        coeff = f["nu"][rows]
        if tensor.ndim != 4 or tensor.shape[1] != 1:
            raise DatasetFormatError(f"{path}: PDEBench Darcy 'tensor' has shape {tensor.shape}, expected "
                                     f"(N, 1, S, S) next to 'nu' {coeff.shape}")
        arrays = {"coeff": coeff, "sol": tensor[:, 0]}
        return PDEData(_check(arrays, "darcy_2d", path), {**meta, "equation": "pdebench_darcy"})
    if tensor.ndim not in (3, 4):
        raise DatasetFormatError(f"{path}: PDEBench 'tensor' has shape {tensor.shape}, expected (N, T, S) or "
                                 f"(N, T, S, S)")
    frames = tensor.shape[1]
    arrays = {"u": np.moveaxis(tensor, 1, -1)}  # (N, T, x[, y]) -> (N, x[, y], T)
    if "t-coordinate" in f:
        t = f["t-coordinate"][()].reshape(-1)
        # Some PDEBench files store T+1 time stamps (cell edges) for T frames: keep the first T.
        if t.shape[0] < frames:
            raise DatasetFormatError(f"{path}: 't-coordinate' has {t.shape[0]} entries for {frames} frames")
        arrays["t"] = t[:frames]
    for src, dst, axis in (("x-coordinate", "grid_x", 2), ("y-coordinate", "grid_y", 3)):
        if src in f:
            grid = f[src][()].reshape(-1)
            if axis < tensor.ndim and grid.shape[0] != tensor.shape[axis]:
                raise DatasetFormatError(f"{path}: '{src}' has {grid.shape[0]} points, 'tensor' {tensor.shape} "
                                         f"has {tensor.shape[axis]} on that axis")
            arrays[dst] = grid
    return PDEData(arrays, {**meta, "equation": "pdebench_series"})


def _read_pt(path, n):
    import torch

    try:  # weights_only: a dataset file must never run code when read
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "weights only" not in str(err).lower() and "weights_only" not in str(err):
            raise
        raise DatasetFormatError(f"{path}: refused — the .pt file holds objects other than tensors and plain "
                                 f"values, which would run code when unpickled; expected a dict of tensors "
                                 f"'x' and 'y'") from err
    if not isinstance(raw, dict) or not {"x", "y"} <= set(raw):
        found = sorted(raw) if isinstance(raw, dict) else type(raw).__name__
        raise DatasetFormatError(f"{path}: neuraloperator .pt file holding {found}; expected a dict with "
                                 f"tensors 'x' and 'y' (sample axis first)")
    arrays = {}
    for key in ("x", "y"):
        value = raw[key]
        arrays[key] = _first(value.numpy() if hasattr(value, "numpy") else np.asarray(value), n)
    if arrays["x"].shape[0] != arrays["y"].shape[0]:
        raise DatasetFormatError(f"{path}: 'x' {arrays['x'].shape} and 'y' {arrays['y'].shape} have different "
                                 f"sample counts")
    return PDEData(arrays, {"format": "neuraloperator-pt", "equation": "pairs"})
