"""Atomic writes: a file under its final name is always whole, and gets the permissions the umask gives.

Every writer writes a temporary file in the destination folder and `os.replace`s it (atomic within one
file system), so a reader, or a run killed mid-write, never sees half a file.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(path, mode: int = 0o666):
    """Yield a temporary path beside `path`; on success it is chmod-ed to `mode & ~umask` and renamed to
    `path`, on any failure removed. `mkstemp` alone would leave the file 0600."""
    path = Path(path)
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, mode & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def make_folder(folder) -> Path:
    """`mkdir -p folder`, with a one-line ConfigError instead of the OS error when `folder` or one of its
    parents is an existing file (mkdir's FileExistsError / NotADirectoryError would be a traceback)."""
    from common.errors import ConfigError

    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), None)
        if blocker is None:  # not the file-in-the-way case (e.g. a race): the OS error says more
            raise
        raise ConfigError(f"cannot make the folder {folder}: {blocker} is a file, not a folder",
                          hint=f"choose an output outside {blocker}, or move that file") from None
    return folder


def check_output_parent(path, option: str = "--out") -> Path:
    """ConfigError (before anything is written) when no folder can be made for `path`: some ancestor
    is an existing file. Returns the path."""
    from common.errors import ConfigError

    path = Path(path)
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{option} {path}: {parent} is a file, not a folder",
                                  hint=f"choose an {option} outside {parent}")
            break
    return path


def write_text_atomic(path, text: str) -> Path:
    """Write `text` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json_atomic(path, obj, indent: int = 2) -> Path:
    """`obj` as indented JSON (plus a final newline) to `path`, atomically."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def save_torch_atomic(obj, path) -> Path:
    """`torch.save(obj)` to `path`, atomically (never a torn checkpoint)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


@contextmanager
def atomic_h5(path):
    """An `h5py.File` opened for writing on a temporary file that replaces `path` only when the block
    ends without an error."""
    import h5py

    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as handle:
            yield handle


def save_figure(fig, path, dpi: int = 110) -> Path:
    """A matplotlib figure as a PNG at `path`, written atomically; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)
