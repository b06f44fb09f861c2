"""HDF5 helpers shared by the readers and the simulator: atomic writes and checked reads whose errors
name the file, the key and what was expected."""
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import h5py


class MalformedFileError(ValueError):
    """An MRI data file lacks a key or holds an array of the wrong shape or dtype."""


def write_text_atomically(path, text: str) -> None:
    """Write text to a temporary file beside `path`, then os.replace it: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


@contextmanager
def atomic_h5(path):
    """Open a temporary HDF5 file next to ``path`` for writing; on success it replaces ``path``
    (os.replace is atomic within a folder), on failure it is removed, so readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with h5py.File(tmp, "w") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
