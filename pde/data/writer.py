"""Atomic, chunked, resumable HDF5 writing of generated datasets.

A run writes into ``<out>.partial`` in batches. The file carries the generator parameters as a JSON
attribute and the number of samples already written (``completed``). A restarted run with the same
parameters continues at ``completed``; with different parameters it stops with an error. When every
sample is written the file is marked complete and renamed to ``<out>`` with ``os.replace`` (atomic on
one file system), so a file named ``<out>`` is always whole.

Every sample is drawn from its own generator seeded by (seed, sample index) (see
`pde.data.grf.sample_seed`), so a resumed file equals an uninterrupted one whatever the batch sizes.
"""
import json
import os
import subprocess
from pathlib import Path
from typing import Callable

import h5py
import numpy as np

FORMAT_NAME = "monarch-sciml/pde"
FORMAT_VERSION = 1


def code_version() -> str:
    """Package version, plus the git commit (and '-dirty') when run from a checkout."""
    try:
        from importlib.metadata import version

        text = version("monarch-sciml")
    except Exception:  # not installed: still write something useful
        text = "unknown"
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                                text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "pde"], cwd=root, capture_output=True,
                               text=True, timeout=5).stdout.strip()
        if commit:
            text += f"+g{commit}" + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        pass
    return text


def write_text_atomically(path, text: str) -> None:
    """Write text to a temporary file beside `path`, then os.replace it: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def write_resumable(out, *, params: dict, sample_shapes: dict, n_samples: int, batch_size: int,
                    make_batch: Callable[[int, int], dict], attrs: dict | None = None,
                    overwrite: bool = False, progress: bool = True, desc: str = "generating") -> Path:
    """Generate `n_samples` samples batch by batch into `out` (HDF5), resumably and atomically.

    Args:
        out: final file path; work happens in ``<out>.partial`` beside it.
        params: everything that determines the data (equation parameters, sizes, seed, code package
            version). Stored as the JSON attribute ``generator_params`` and compared on resume.
        sample_shapes: {key: per-sample shape} of the arrays stacked along a leading sample axis
            (stored float32, chunked one sample per chunk).
        n_samples: total number of samples.
        batch_size: samples per call of `make_batch` (does not change the data).
        make_batch: ``make_batch(start, count) -> {key: array}``; per-sample keys have a leading axis
            of length `count`; any other key is a shared array (e.g. ``t``) written once.
        attrs: further file attributes (preset name, split sizes, …); scalars or strings.
        overwrite: replace an existing complete `out`; without it an existing `out` is an error.

    Returns the path of the finished file.
    """
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite (overwrite=True) to regenerate it")
    if n_samples < 1 or batch_size < 1:
        raise ValueError(f"need n_samples >= 1 and batch_size >= 1, got {n_samples}, {batch_size}")
    out.parent.mkdir(parents=True, exist_ok=True)
    wanted = _canonical(params)

    if partial.exists():
        try:
            handle = h5py.File(partial, "r+")
        except OSError as err:
            raise RuntimeError(f"{partial} exists but cannot be opened ({err}); it was probably cut off "
                               f"while being written. Delete it to start over.") from err
        stored = handle.attrs.get("generator_params", "")
        if stored != wanted:
            handle.close()
            old = json.loads(stored) if stored else {}
            diff = {k: (old.get(k), params.get(k)) for k in sorted(set(old) | set(params))
                    if old.get(k) != params.get(k)}
            raise RuntimeError(f"{partial} was started with different parameters "
                               f"(key: (in file, requested)) {diff}; rerun with the file's parameters to "
                               f"resume, or delete {partial} to start over.")
    else:
        handle = h5py.File(partial, "w")
        handle.attrs.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                             "generator_params": wanted, "n_samples": n_samples, "completed": 0,
                             "complete": False, "code_version": code_version()})
        for key, value in (attrs or {}).items():
            handle.attrs[key] = value
        for key, shape in sample_shapes.items():
            handle.create_dataset(key, shape=(n_samples, *shape), dtype="float32", chunks=(1, *shape))
        handle.flush()

    with handle:
        done = int(handle.attrs["completed"])
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_samples, initial=done, desc=desc, unit="sample")
        while done < n_samples:
            count = min(batch_size, n_samples - done)
            batch = make_batch(done, count)
            for key, value in batch.items():
                value = np.asarray(value)
                if key in sample_shapes:
                    expected = (count, *sample_shapes[key])
                    if value.shape != expected:
                        raise ValueError(f"make_batch returned {key} of shape {value.shape}, expected {expected}")
                    if not np.isfinite(value).all():
                        raise FloatingPointError(f"non-finite values in {key} for samples {done}..{done + count - 1}"
                                                 f" (solver blew up: reduce dt)")
                    handle[key][done:done + count] = value
                elif key not in handle:
                    handle.create_dataset(key, data=value.astype(np.float32))
            done += count
            # The count is updated only after the batch's data, so a crash never counts unwritten samples.
            handle.attrs["completed"] = done
            handle.flush()
            if bar is not None:
                bar.update(count)
        if bar is not None:
            bar.close()
        handle.attrs["complete"] = True
    os.replace(partial, out)
    return out
