"""HDF5 helpers shared by the MRI readers: checked opens and reads whose errors name the file, the key and
what was expected. (Atomic writes: common.files.)"""
from contextlib import contextmanager

import h5py
import numpy as np

from common.errors import FormatError, UserError

__all__ = ["CORRUPT", "MalformedFileError", "check_finite", "open_h5", "reading", "require_dataset"]

CORRUPT = "truncated or corrupt — re-copy or regenerate it"


class MalformedFileError(FormatError):
    """An MRI data file that is truncated or corrupt, lacks a key, holds an array of the wrong shape or
    dtype, or holds NaN/Inf. (A `common.errors.FormatError`, hence also a ValueError.)"""


@contextmanager
def reading(path, fmt: str):
    """Turn any library error raised while reading `path` into MalformedFileError("truncated or corrupt");
    the library's own text stays in the exception chain (run.py --debug), not in the message."""
    try:
        yield
    except UserError:  # already says what is wrong (a bad key, a bad argument)
        raise
    except (OSError, KeyError, ValueError, RuntimeError, TypeError) as err:
        raise MalformedFileError(f"{path}: {CORRUPT} (reading it as a {fmt} HDF5 file failed with "
                                 f"{type(err).__name__})") from err


def open_h5(path, fmt: str) -> h5py.File:
    """`h5py.File(path, "r")`, or MalformedFileError for an empty, truncated or non-HDF5 file."""
    with reading(path, fmt):
        return h5py.File(path, "r")


def check_finite(arrays: dict, where: str, index: int, index_name: str = "slice") -> None:
    """MalformedFileError naming the file, the key and the slice (`index`) when an array holds NaN/Inf."""
    for key, value in arrays.items():
        if value is not None and np.asarray(value).dtype.kind in "fc" and not np.isfinite(value).all():
            raise MalformedFileError(f"{where}: '{key}' holds NaN or Inf in {index_name} {index} — regenerate or "
                                     f"re-copy the file, or leave that scan out")


def require_dataset(f: h5py.File, key: str, ndim: int, kind: str, layout: str, fmt: str) -> h5py.Dataset:
    """Return ``f[key]`` after checking that it exists, has ``ndim`` axes and a dtype of ``kind``
    ("complex", "real" or "bool-or-real"); ``layout`` names the axes and ``fmt`` the format, for the error."""
    where = f"{f.filename}"
    if key not in f:
        have = sorted(_all_keys(f))
        raise MalformedFileError(
            f"{where}: missing dataset '{key}' with axes {layout} (a {fmt} file needs it); "
            f"the file holds {have}")
    ds = f[key]
    if not isinstance(ds, h5py.Dataset):
        raise MalformedFileError(f"{where}: '{key}' is a group, expected a dataset with axes {layout}")
    if ds.ndim != ndim:
        raise MalformedFileError(
            f"{where}: '{key}' has shape {ds.shape} ({ds.ndim} axes), expected {ndim} axes {layout} "
            f"({fmt} layout)")
    dt = ds.dtype
    ok = {"complex": dt.kind == "c",
          "real": dt.kind in "fiu",
          "bool-or-real": dt.kind in "bfiu"}[kind]
    if not ok:
        wanted = {"complex": "complex64", "real": "a real dtype", "bool-or-real": "bool or a real dtype"}[kind]
        raise MalformedFileError(
            f"{where}: '{key}' has dtype {dt}, expected {wanted} ({fmt} layout, axes {layout})")
    return ds


def _all_keys(f: h5py.File) -> list[str]:
    keys = []
    f.visit(keys.append)
    return keys
