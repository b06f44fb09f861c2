"""The data of an MRI study: one simulated dataset per track, made when missing, with subject-disjoint
splits checked on the files (`ensure_track`, `check_splits`), and the training-mask pools.

    folder = ensure_track(problem, "exact")        # datasets/mri-study-cpu (simulated, resumable)
    splits = check_splits({"exact": folder, "mismatch": other}, min_test_volumes=10)

Tracks: "exact" simulates `problem["sim_preset"]` (a `mri.data.presets` name); "mismatch" its
"-mismatch" preset (B0 off-resonance, gradient delay, ESPIRiT maps), or the preset with
`mri.data.presets.MISMATCH` when there is none; `problem["sim_overrides"]` replace single settings of
both. Both tracks draw the same subjects from the same seed, so their splits agree (checked).
Folders: <data_root>/mri-<sim_preset>[-<hash of the overrides>][-mismatch], so a dataset with other
settings never lands in the folder of another.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from common.errors import ConfigError
from common.files import make_folder

TRACKS = ("exact", "mismatch")


def sim_config(problem: dict, track: str):
    """The SimConfig of a track (see the module docstring)."""
    from mri.data.presets import MISMATCH, PRESETS

    name = problem["sim_preset"]
    if name not in PRESETS:
        raise ConfigError(f"simulation preset {name!r} does not exist; choose from {sorted(PRESETS)}")
    if track not in TRACKS:
        raise ConfigError(f"track {track!r}; expected one of {TRACKS}")
    base = PRESETS[name]
    if track == "mismatch":
        base = PRESETS.get(f"{name}-mismatch") or base.replace(**MISMATCH)
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in problem.get("sim_overrides", {}).items()}
    return base.replace(**overrides)


def data_dir(problem: dict, track: str) -> Path:
    """<data_root>/mri-<sim_preset>[-<overrides hash>][-mismatch]."""
    overrides = problem.get("sim_overrides") or {}
    tag = ""
    if overrides:
        tag = "-" + hashlib.sha1(json.dumps(overrides, sort_keys=True, default=list).encode()).hexdigest()[:8]
    suffix = "-mismatch" if track == "mismatch" else ""
    return Path(problem["data_root"]) / f"mri-{problem['sim_preset']}{tag}{suffix}"


def ensure_track(problem: dict, track: str, workers: int = 1, progress: bool = False) -> Path:
    """Simulate a track's dataset when missing (resuming a partial one); its folder. With workers > 1 the
    missing scans are simulated in that many processes first (each scan is drawn from (seed, index)
    alone and written atomically, so the result is the serial one); `simulate_dataset` then writes
    meta.json and checks the folder (one of other settings is refused there, before any scan is written)."""
    from concurrent.futures import ProcessPoolExecutor

    from mri.data.simulate import dataset_meta, scan_id, simulate_dataset, simulate_scan

    folder, config = data_dir(problem, track), sim_config(problem, track).validate()
    meta = folder / "meta.json"
    same = meta.exists() and json.loads(meta.read_text()).get("config") == dataset_meta(config)["config"]
    missing = [i for i in range(config.n_scans) if not (folder / f"{scan_id(i)}.h5").exists()]
    if workers > 1 and len(missing) > 1 and (same or not meta.exists()):
        make_folder(folder)
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(simulate_scan, [config] * len(missing), missing,
                          [folder / f"{scan_id(i)}.h5" for i in missing]))
    simulate_dataset(config, folder, progress=progress)
    return folder


def scan_subjects(folder) -> dict:
    """{scan id: (subject id, split)} read from the attributes of every scan file of a simulated dataset."""
    import h5py

    out = {}
    for path in sorted(Path(folder).glob("SIM_*.h5")):
        with h5py.File(path, "r") as f:
            out[path.stem] = (str(f.attrs["subject_id"]), str(f.attrs["split"]))
    return out


def check_splits(folders: dict, min_test_volumes: int = 1) -> dict:
    """The common {"train", "val", "test"} scan ids of the tracks ({track: folder}), after checking on the
    files that no subject is in two splits, that the files agree with meta.json, that every track has
    the same scans, subjects and splits, and that there are ≥ min_test_volumes test volumes and at
    least one validation volume. ConfigError otherwise."""
    from mri.recon.training import dataset_splits

    reference = None
    for track, folder in folders.items():
        splits = dataset_splits(folder)
        if not splits:
            raise ConfigError(f"{folder}/meta.json names no splits; simulate with `run.py data mri-sim`")
        files = scan_subjects(folder)
        split_of_subject: dict = {}
        for scan, (subject, split) in files.items():
            if split_of_subject.setdefault(subject, split) != split:
                raise ConfigError(f"{folder}: subject {subject} is in both {split_of_subject[subject]} and {split}")
        for split, ids in splits.items():
            wrong = [s for s in ids if files.get(s, (None, None))[1] != split]
            if wrong:
                raise ConfigError(f"{folder}: scans {wrong} of meta.json's {split} split are missing or belong "
                                  "to another split in their files", hint="simulate the dataset again")
        if len(splits["test"]) < min_test_volumes or not splits["val"]:
            raise ConfigError(f"{folder} has {len(splits['val'])} validation and {len(splits['test'])} test volumes; "
                              f"the study needs ≥ 1 and ≥ {min_test_volumes}",
                              hint="simulate more subjects (sim_overrides n_val / n_test)")
        if reference is None:
            reference = (track, splits, files)
        elif (splits, files) != reference[1:]:
            raise ConfigError(f"tracks {reference[0]} and {track} have different scans, subjects or splits "
                              f"({folders[reference[0]]} vs {folder})", hint="simulate both with the same seed")
    return reference[1]


def ensure_mask_pools(folder, shape, accelerations, seeds, size: int, workers: int = 1, log=print) -> None:
    """Draw the training-mask pools (`mri.recon.training.mask_pool`) of every (acceleration, seed) into
    `folder`, those not there yet, each split over `workers` processes; the runs then read them instead
    of each drawing its own (one 128² Poisson-disc mask costs ~0.5 s of CPU)."""
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    from mri.recon.training import draw_mask_pool, mask_pool_file, save_mask_pool

    shape = tuple(int(n) for n in shape)
    todo = [(float(a), int(s)) for a in sorted(set(accelerations)) for s in sorted(set(seeds))
            if not mask_pool_file(folder, shape, a, s, size).exists()]
    if not todo:
        return
    t0 = time.perf_counter()
    chunks = [list(range(j, size, workers)) for j in range(min(workers, size))]
    for acc, seed in todo:
        if workers > 1:
            with ProcessPoolExecutor(workers) as pool:
                parts = list(pool.map(draw_mask_pool, *zip(*[(shape, acc, seed, c) for c in chunks])))
        else:
            parts = [draw_mask_pool(shape, acc, seed, chunks[0])]
        masks = np.zeros((size, *shape), bool)
        for c, part in zip(chunks, parts):
            masks[c] = part
        save_mask_pool(mask_pool_file(folder, shape, acc, seed, size), masks)
    log(f"drew {len(todo)} mask pools of {size} masks in {time.perf_counter() - t0:.1f} s")


__all__ = ["TRACKS", "sim_config", "data_dir", "ensure_track", "scan_subjects", "check_splits", "ensure_mask_pools"]
