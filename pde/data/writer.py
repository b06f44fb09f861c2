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

from common.errors import ConfigError, NonFiniteError, RunExistsError
from common.files import atomic_h5

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


def _canonical(params: dict) -> str:
    return json.dumps(params, sort_keys=True)


def write_resumable(out, *, params: dict, sample_shapes: dict, n_samples: int, batch_size: int,
                    make_batch: Callable[[int, int], dict], attrs: dict | None = None,
                    overwrite: bool = False, progress: bool = True, desc: str = "generating",
                    stale_reason: Callable[[dict], str | None] | None = None) -> Path:
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
        stale_reason: ``stale_reason(recorded_params) -> str | None``: why a ``.partial`` started with
            other parameters could never have produced data (then it is replaced, saying so, instead of
            refused); None means the recorded run was valid and the mismatch is refused.

    A ``.partial`` that cannot be opened (cut off while its structure was being written) holds nothing
    to resume and is replaced, saying so. Returns the path of the finished file.
    Raises RunExistsError (``out`` exists), ConfigError (bad sizes, or a ``.partial`` of another valid run).
    """
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    if out.exists() and not overwrite:
        raise RunExistsError(f"{out} already exists; pass --overwrite (overwrite=True) to regenerate it")
    if n_samples < 1 or batch_size < 1:
        raise ConfigError(f"need n_samples >= 1 and batch_size >= 1, got {n_samples}, {batch_size}")
    wanted = _canonical(params)
    handle = _open_partial(partial, params, wanted, stale_reason)
    if handle is None:
        # Built under a temporary name, so a `.partial` always has its full structure.
        with atomic_h5(partial) as new:
            new.attrs.update({"format": FORMAT_NAME, "format_version": FORMAT_VERSION,
                              "generator_params": wanted, "n_samples": n_samples, "completed": 0,
                              "complete": False, "code_version": code_version()})
            for key, value in (attrs or {}).items():
                new.attrs[key] = value
            for key, shape in sample_shapes.items():
                new.create_dataset(key, shape=(n_samples, *shape), dtype="float32", chunks=(1, *shape))
        handle = h5py.File(partial, "r+")

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
                        # A solver that diverged (a step inside the CFL bound can still be unstable at
                        # low viscosity): the user's fix is a smaller step, so one line, not a traceback.
                        raise NonFiniteError(f"non-finite values in {key} for samples {done}..{done + count - 1}: "
                                             f"the solver diverged", hint="pass a smaller --dt and --overwrite")
                    handle[key][done:done + count] = value
                elif key not in handle:
                    handle.create_dataset(key, data=value.astype(np.float32))
            # The data reach the file before the count that says they are there (two flushes), so a
            # process killed at any moment never counts unwritten samples.
            handle.flush()
            done += count
            handle.attrs["completed"] = done
            handle.flush()
            if bar is not None:
                bar.update(count)
        if bar is not None:
            bar.close()
        handle.attrs["complete"] = True
    os.replace(partial, out)
    return out


def _open_partial(partial: Path, params: dict, wanted: str, stale_reason) -> h5py.File | None:
    """The existing ``.partial`` opened for resuming, or None (none there, or replaced: see write_resumable)."""
    if not partial.exists():
        return None
    try:
        handle = h5py.File(partial, "r+")
        stored = handle.attrs.get("generator_params", "")
        complete_structure = "completed" in handle.attrs
    except (OSError, KeyError, RuntimeError) as err:
        print(f"replacing {partial}: it cannot be opened ({str(err).splitlines()[0][:80]}), so it was cut off "
              f"before any sample was counted; starting over")
        partial.unlink()
        return None
    if stored == wanted and complete_structure:
        return handle
    handle.close()
    try:
        old = json.loads(stored) if stored else None
    except json.JSONDecodeError:
        old = None
    reason = "it records no generator parameters" if not isinstance(old, dict) or not complete_structure else (
        stale_reason(old) if stale_reason is not None else None)
    if reason is not None:
        print(f"replacing stale {partial}: it was started with parameters that could never run ({reason})")
        partial.unlink()
        return None
    diff = {k: (old.get(k), params.get(k)) for k in sorted(set(old) | set(params)) if old.get(k) != params.get(k)}
    raise ConfigError(f"{partial} was started with different parameters (key: (in file, requested)) {diff}",
                      hint=f"rerun with the file's parameters to resume it, or delete {partial} to start over")
