"""A study folder's portable state: what a fresh machine needs to resume a study where it stopped.

Long studies outlive one machine (a CPU session ends at a hard time limit, and the next may start on a new
machine with only the repository). `snapshot(out, dest)` copies a study folder without the checkpoints of
finished work, so the state is small enough to commit:

- spec.json, measure.json, tuning/*.json, results and reports, every metrics.jsonl, trial.json, test.json,
  config.json: as they are (kilobytes);
- tuning.sqlite3 (the Optuna storage) through SQLite's online backup, which is consistent even while the
  study writes to it;
- a unit that is done (a tuning trial with trial.json, a final run with test.json) without its *.pt files:
  nothing reads them again (the test split is evaluated once, when the run finishes);
- a final run in flight with its last.pt and best.pt, so that it resumes mid-run instead of from epoch 0
  (final runs are the long ones);
- a tuning trial in flight without them (a trial is short, its checkpoints are megabytes, and a trial
  folder without last.pt restarts the trial: the same point and seed give the same curve again).

The snapshot is written beside `dest` and renamed over it, so a kill never leaves half a snapshot, and an
older snapshot is replaced only when the new one is complete. `restore(snapshot, out)` copies a snapshot
into a study folder that does not exist yet; the study then resumes with its usual command (the runner
treats a run folder without last.pt as a fresh start, so nothing in a snapshot can be half-trusted).
`periodic_snapshots(out, dest, seconds)` takes one every `seconds` while a study runs, and one at its end
(`run.py … study … --snapshot FOLDER --snapshot-every MINUTES`).
"""
from __future__ import annotations

import shutil
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from common.errors import ConfigError, RunExistsError

DATABASE = "tuning.sqlite3"
#: files whose presence says a unit (one run folder) is finished
DONE_MARKERS = ("trial.json", "test.json")


def _unit_done(folder: Path) -> bool:
    return any((folder / name).exists() for name in DONE_MARKERS)


def _copy_database(source: Path, target: Path) -> None:
    """A consistent copy of an SQLite file that another process may be writing (the online backup API)."""
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def snapshot(out, dest) -> dict:
    """Write the portable state of study folder `out` to `dest` (replacing an older snapshot there).
    Returns {"files", "bytes", "checkpoints", "dropped_checkpoints"}: what was written, and the *.pt files
    kept (final runs in flight) and left out (finished units, tuning trials)."""
    out, dest = Path(out), Path(dest)
    if not (out / "spec.json").exists():
        raise ConfigError(f"{out} is not a study folder (no spec.json)", hint="pass the folder a study runs in (--out)")
    if dest.resolve() == out.resolve() or out.resolve() in dest.resolve().parents:
        raise ConfigError(f"snapshot target {dest} lies inside the study folder {out}", hint="choose a folder outside it")
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    stats = {"files": 0, "bytes": 0, "checkpoints": 0, "dropped_checkpoints": 0}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out)
        if not path.is_file() or path.suffix == ".tmp" or (path.name.startswith(DATABASE) and path.name != DATABASE):
            # .tmp: a write in progress (common.files.atomic_path), its previous version is what counts;
            # SQLite's journal / WAL files: the backup below already holds their content
            continue
        if path.suffix == ".pt":
            if _unit_done(path.parent) or rel.parts[:2] == ("runs", "tune"):
                stats["dropped_checkpoints"] += 1
                continue
            stats["checkpoints"] += 1
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() == DATABASE:
            _copy_database(path, target)
        else:
            shutil.copy2(path, target)
        stats["files"] += 1
        stats["bytes"] += target.stat().st_size
    if dest.exists():
        old = dest.with_name(dest.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        dest.rename(old)
        staging.rename(dest)
        shutil.rmtree(old)
    else:
        staging.rename(dest)
    return stats


def restore(source, out) -> None:
    """Copy snapshot `source` into a new study folder `out` (refused where `out` holds anything: a study
    there is newer than any snapshot of it, or another one; nothing of a user's is replaced)."""
    source, out = Path(source), Path(out)
    if not (source / "spec.json").exists():
        raise ConfigError(f"{source} is not a study snapshot (no spec.json)",
                          hint="pass a folder written by --snapshot")
    if out.exists() and any(out.iterdir()):
        raise RunExistsError(f"{out} is not empty; not restoring {source} into it",
                             hint="rerun without --from-snapshot to resume the study there, or pick another --out")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(source, staging)
    if out.exists():
        out.rmdir()
    staging.rename(out)


@contextmanager
def periodic_snapshots(out, dest, seconds: float, log=print):
    """Snapshot study folder `out` into `dest` every `seconds` while the body runs (a study), and once more
    when it ends, also by an error or Ctrl-C: a machine that goes away unannounced loses at most one
    interval. A snapshot that fails (e.g. the folder not made yet, a full disk) is reported and retried at
    the next interval, never raised into the study."""
    def take(final: bool = False) -> None:
        try:
            stats = snapshot(out, dest)
            log(f"snapshot{' (final)' if final else ''}: {dest} ({stats['files']} files, "
                f"{stats['bytes'] / 1e6:.1f} MB)")
        except (OSError, ConfigError, sqlite3.Error) as error:
            log(f"snapshot into {dest} failed ({error}); retrying at the next one")

    stop = threading.Event()

    def loop():
        while not stop.wait(seconds):
            take()

    thread = threading.Thread(target=loop, name="study-snapshots", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        take(final=True)


__all__ = ["periodic_snapshots", "restore", "snapshot"]
