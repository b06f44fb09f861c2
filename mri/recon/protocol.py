"""The MRI benchmark protocol: one resumable command that simulates the data, tunes every learned model
on validation, trains every (track, acceleration, model, seed), evaluates the selected checkpoints on
the held-out test subjects once at the end, and writes the report (`protocol_report`).

    python run.py mri protocol --preset cpu            # 64², about an hour on one CPU core
    python run.py mri protocol --preset gpu            # 128², one H100/H200
    result = run_protocol(PROTOCOLS["cpu"].replace(epochs=4))

Steps (every value a `ProtocolConfig` field and a command-line option):
1. Data: two simulated datasets with the same subjects, the exact track (`sim_preset`) and the
   model-mismatch track (`sim_preset`-mismatch: B0 off-resonance, gradient delay, ESPIRiT maps), made
   with `mri.data.simulate.simulate_dataset` when missing (resumable). `check_splits` reads the
   subject id of every generated file and refuses a subject in two splits, or tracks whose splits or
   subjects differ, or fewer than `min_test_volumes` test volumes.
2. Tuning (validation only): every learned model trains on the exact track at `tune_acceleration`
   with seed `seeds[0]` at every point of the SAME grid `lr_grid` × `transform_lr_grid`; a point whose
   learning rate acts on no parameter of that model (the FFT models have no transform parameters;
   mSENSE-type models have no network parameters) is the same run as another point, so it is run once
   (`effective_grid`). The point with the lowest best validation loss is chosen per model and used
   for every track, acceleration and seed. Same epochs for every model and grid point.
3. Training: per (track, acceleration, model, seed) with the chosen point; Poisson-disc masks drawn
   per (seed, epoch, slice) (`masks="random"`; with `mask_pool` = P, one of P per (acceleration, seed),
   drawn once on all cores into <out_dir>/masks by `prepare_mask_pools` and passed to every run through
   TrainConfig.mask_pool / mask_pool_dir), the dataset's fixed masks for validation, `best.pt`
   chosen on validation. Data efficiency: `curve_models` on the first `curve_n` training subjects at
   `curve_acceleration` (exact track). Classical baselines: λ of CG-SENSE and L1-wavelet chosen on
   the validation slices per (track, acceleration) by `classical.tune_lambda`.
4. Test (once, after all training): every selected checkpoint and baseline on the test subjects with
   their stored masks; per-volume metrics in both conventions (`metrics.volume_metrics`, "fastmri"
   and "skmtea"), cached per run so a rerun skips them.
Runs live under `out_dir` and are skipped when finished; `evaluate_only` reports what is finished.
"""
from __future__ import annotations

import dataclasses
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import ConfigError

TRACKS = ("exact", "mismatch")
CLASSICAL = ("zf", "cg-sense", "l1-wavelet")
LEARNED = ("unet-plain", "unet", "msense", "dsense", "diagsense", "unrolled-fft", "unrolled-monarch",
           "unrolled-dense", "unrolled-diag")
CONVENTIONS = ("fastmri", "skmtea")


@dataclass(frozen=True)
class ProtocolConfig:
    """All settings of one protocol run (see the module docstring for what each step does)."""
    sim_preset: str = "protocol-cpu"          # mri.data.presets name; the mismatch track adds "-mismatch"
    sim_overrides: dict = field(default_factory=lambda: {"accelerations": (2.0, 4.0, 8.0)})
    data_root: str = "datasets"               # datasets go to <data_root>/mri-<sim_preset>[-mismatch]
    tracks: tuple = TRACKS
    accelerations: tuple = (2.0, 4.0, 8.0)
    mismatch_accelerations: tuple | None = None  # the mismatch track's (None: `accelerations`)
    learned_models: tuple = LEARNED
    classical_models: tuple = CLASSICAL
    seeds: tuple = (0, 1, 2)
    epochs: int = 8
    batch_size: int = 4
    scale: str = "tiny"                       # mri.recon.models.DEFAULTS (unet-plain is always 32 ch, 4 pools)
    model_kwargs: dict = field(default_factory=dict)
    weight_decay: float = 0.0
    loss: str = "l1"
    lr_grid: tuple = (1e-3, 3e-3)
    transform_lr_grid: tuple = (1e-3, 1e-2)
    tune_acceleration: float = 4.0
    curve_models: tuple = ("unet-plain", "unet", "msense")
    curve_n: tuple = (1, 2, 4, 8)
    curve_acceleration: float = 2.0
    classical_iters: int = 30
    example_acceleration: float = 4.0
    min_test_volumes: int = 10
    n_resamples: int = 10_000
    mask_pool: int | None = None              # None: a fresh mask per (seed, epoch, slice); P: drawn from P per (acc, seed)
    jobs: int = 1                             # training runs at once (subprocesses; the GPU preset shares one GPU)
    device: str = "auto"
    out_dir: str = "runs/mri-protocol"
    report_dir: str = "benchmarks/results"
    stem: str = "mri_protocol"

    def replace(self, **changes) -> "ProtocolConfig":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def track_accelerations(self, track: str) -> tuple:
        if track == "mismatch" and self.mismatch_accelerations is not None:
            return tuple(self.mismatch_accelerations)
        return tuple(self.accelerations)

    def data_dir(self, track: str) -> Path:
        suffix = "-mismatch" if track == "mismatch" else ""
        return Path(self.data_root) / f"mri-{self.sim_preset}{suffix}"

    def sim_config(self, track: str):
        """The data's SimConfig: the preset (the mismatch track: its "-mismatch" preset, else the preset
        with mri.data.presets.MISMATCH) with `sim_overrides`."""
        from mri.data.presets import MISMATCH, PRESETS

        if self.sim_preset not in PRESETS:
            raise ConfigError(f"simulation preset {self.sim_preset!r} does not exist; choose from {sorted(PRESETS)}")
        base = PRESETS[self.sim_preset]
        if track == "mismatch":
            base = PRESETS.get(f"{self.sim_preset}-mismatch") or base.replace(**MISMATCH)
        return base.replace(**self.sim_overrides)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def validate(self) -> "ProtocolConfig":
        from mri.recon.model_names import is_trainable, known_models

        bad = [m for m in (*self.learned_models, *self.classical_models, *self.curve_models) if m not in known_models()]
        if bad:
            raise ConfigError(f"unknown models {bad}; choose from {known_models()}")
        untrainable = [m for m in self.learned_models if not is_trainable(m)]
        if untrainable or any(m not in self.learned_models for m in self.curve_models):
            raise ConfigError(f"learned models must be trainable ({untrainable} are not) and curve models "
                              f"{list(self.curve_models)} must be among the learned models")
        if any(t not in TRACKS for t in self.tracks) or not self.tracks:
            raise ConfigError(f"tracks {list(self.tracks)}; expected a subset of {TRACKS}")
        if len(self.seeds) < 1 or self.epochs < 1 or not self.lr_grid or not self.transform_lr_grid:
            raise ConfigError("seeds, lr grids must be non-empty and epochs ≥ 1")
        stored = tuple(float(a) for a in self.sim_config(self.tracks[0]).accelerations)
        for name, acc in [("tune_acceleration", self.tune_acceleration), ("curve_acceleration", self.curve_acceleration),
                          ("example_acceleration", self.example_acceleration)] + [
                ("accelerations", a) for t in self.tracks for a in self.track_accelerations(t)]:
            if float(acc) not in stored:
                raise ConfigError(f"{name} {acc:g} has no stored mask in the simulated data (stored: {stored})",
                                  hint="add it to the simulation's accelerations")
        return self


PROTOCOLS = {
    # 64², 6 coils, 8 + 2 + 10 subjects × 4 slices; tiny-scale unrolled nets (3 steps, 16 ch)
    "cpu": ProtocolConfig(epochs=10, batch_size=2),
    # 128², 8 coils, 32 + 4 + 16 subjects × 8 slices; small-scale unrolled nets (5 steps, 32 ch)
    # 128², 8 coils, 32 + 4 + 16 subjects × 8 slices; tiny-scale unrolled nets; 8 runs at once on the one
    # GPU (16 CPU cores draw the masks; a pool of 256 masks per (acceleration, seed) as drawing one 128²
    # Poisson-disc mask costs ~0.5 s of CPU)
    "gpu": ProtocolConfig(sim_preset="protocol-gpu", scale="tiny", epochs=8, batch_size=8, mask_pool=256, jobs=8,
                          accelerations=(2.0, 4.0, 8.0), mismatch_accelerations=(4.0, 8.0),
                          curve_n=(1, 2, 4, 8), out_dir="runs/mri-protocol-gpu", stem="mri_protocol_gpu",
                          min_test_volumes=10),
}


# ------------------------------------------------------------------------------------------ data
def ensure_datasets(cfg: ProtocolConfig, progress: bool = True) -> dict:
    """Simulate both tracks when missing (resumes partial ones); {track: folder}. With jobs > 1 the
    missing scans are simulated on all CPU cores first (each scan is drawn from (seed, index) alone and
    written atomically, so the result is the serial one); `simulate_dataset` then writes meta.json and
    checks the folder (a folder of other settings is refused there, before any scan is written)."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    from mri.data.simulate import dataset_meta, scan_id, simulate_dataset, simulate_scan

    folders = {}
    for track in cfg.tracks:
        folder, config = cfg.data_dir(track), cfg.sim_config(track).validate()
        meta = folder / "meta.json"
        same = meta.exists() and json.loads(meta.read_text()).get("config") == dataset_meta(config)["config"]
        missing = [i for i in range(config.n_scans) if not (folder / f"{scan_id(i)}.h5").exists()]
        if cfg.jobs > 1 and len(missing) > 1 and (same or not meta.exists()):
            folder.mkdir(parents=True, exist_ok=True)
            with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
                list(pool.map(simulate_scan, [config] * len(missing), missing,
                              [folder / f"{scan_id(i)}.h5" for i in missing]))
        simulate_dataset(config, folder, progress=progress)
        folders[track] = folder
    return folders


def scan_subjects(data_dir) -> dict:
    """{scan id: (subject id, split)} read from the attributes of every scan file of a simulated dataset."""
    import h5py

    out = {}
    for path in sorted(Path(data_dir).glob("SIM_*.h5")):
        with h5py.File(path, "r") as f:
            out[path.stem] = (str(f.attrs["subject_id"]), str(f.attrs["split"]))
    return out


def check_splits(data_dirs: dict, min_test_volumes: int = 1) -> dict:
    """The common {"train", "val", "test"} scan ids of the tracks, after checking on the files that no
    subject is in two splits, that the files agree with meta.json, that every track has the same scans,
    subjects and splits, and that there are ≥ min_test_volumes test volumes. ConfigError otherwise."""
    from mri.recon.training import dataset_splits

    reference = None
    for track, folder in data_dirs.items():
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
        if len(splits["test"]) < min_test_volumes:
            raise ConfigError(f"{folder} has {len(splits['test'])} test volumes; the protocol needs "
                              f"≥ {min_test_volumes}", hint="simulate more test subjects (--n-test-scans)")
        if reference is None:
            reference = (track, splits, files)
        elif (splits, files) != reference[1:]:
            raise ConfigError(f"tracks {reference[0]} and {track} have different scans, subjects or splits "
                              f"({data_dirs[reference[0]]} vs {folder})", hint="simulate both with the same seed")
    return reference[1]


# ----------------------------------------------------------------------------------------- masks
def mask_pool_dir(cfg: "ProtocolConfig") -> str | None:
    """The folder of the protocol's mask pools (None without `mask_pool`): every run reads them there."""
    return str(Path(cfg.out_dir) / "masks") if cfg.mask_pool else None


def prepare_mask_pools(cfg: "ProtocolConfig", shape, log=print) -> None:
    """Draw the mask pools (`mri.recon.training.mask_pool`) of every (acceleration, seed) the protocol
    trains with, on all CPU cores, into `mask_pool_dir(cfg)` (skipped when mask_pool is None or the
    files exist); the runs then read them instead of each drawing its own."""
    import os
    from concurrent.futures import ProcessPoolExecutor

    import numpy as np

    from mri.recon.training import draw_mask_pool, mask_pool_file, save_mask_pool

    if not cfg.mask_pool:
        return
    shape, folder = tuple(int(n) for n in shape), mask_pool_dir(cfg)
    accs = {float(a) for t in cfg.tracks for a in cfg.track_accelerations(t)} | {float(cfg.tune_acceleration),
                                                                                 float(cfg.curve_acceleration)}
    todo = [(a, s) for a in sorted(accs) for s in cfg.seeds
            if not mask_pool_file(folder, shape, a, s, cfg.mask_pool).exists()]
    if not todo:
        return
    t0, workers = time.perf_counter(), os.cpu_count() or 1
    chunks = [list(range(j, cfg.mask_pool, workers)) for j in range(min(workers, cfg.mask_pool))]
    with ProcessPoolExecutor(workers) as pool:
        for acc, seed in todo:
            parts = list(pool.map(draw_mask_pool, *zip(*[(shape, acc, seed, c) for c in chunks])))
            masks = np.zeros((cfg.mask_pool, *shape), bool)
            for c, part in zip(chunks, parts):
                masks[c] = part
            save_mask_pool(mask_pool_file(folder, shape, acc, seed, cfg.mask_pool), masks)
    log(f"drew {len(todo)} mask pools of {cfg.mask_pool} in {time.perf_counter() - t0:.1f} s")


# ------------------------------------------------------------------------------------------ grid
def has_parameters(model_name: str, shape, cfg: ProtocolConfig) -> tuple[bool, bool]:
    """(has network parameters, has transform parameters) of a freshly built model."""
    from common.training import transform_parameters
    from monarch_core import LearnableDFT
    from mri.recon.models import build_model

    model = build_model(model_name, shape, cfg.scale, **cfg.model_kwargs)
    transform = {id(p) for p in transform_parameters(model, (LearnableDFT,))}
    return any(id(p) not in transform for p in model.parameters()), bool(transform)


def effective_grid(model_name: str, shape, cfg: ProtocolConfig) -> list[tuple[float, float]]:
    """The distinct runs of the grid lr_grid × transform_lr_grid for this model: a learning rate that
    acts on no parameter is pinned to its grid's first value (those points are the same run)."""
    network, transform = has_parameters(model_name, shape, cfg)
    points = []
    for lr in cfg.lr_grid:
        for tlr in cfg.transform_lr_grid:
            point = (float(lr if network else cfg.lr_grid[0]), float(tlr if transform else cfg.transform_lr_grid[0]))
            if point not in points:
                points.append(point)
    return points


def run_name(model: str, track: str, acc: float, n: int, seed: int, lr: float, tlr: float) -> str:
    return f"{model}_{track}_acc{acc:g}_n{n}_seed{seed}_lr{lr:g}_tlr{tlr:g}"


def train_config(cfg: ProtocolConfig, model: str, track: str, acc: float, n: int, seed: int, lr: float,
                 tlr: float, progress: bool = False):
    from mri.recon.training import TrainConfig

    return TrainConfig(data_dir=str(cfg.data_dir(track)), model=model, scale=cfg.scale,
                       model_kwargs=dict(cfg.model_kwargs), acceleration=float(acc), n_train_scans=int(n),
                       masks="random", epochs=cfg.epochs, batch_size=cfg.batch_size, lr=lr, transform_lr=tlr,
                       weight_decay=cfg.weight_decay, loss=cfg.loss, seed=int(seed), device=cfg.device,
                       mask_pool=cfg.mask_pool, mask_pool_dir=mask_pool_dir(cfg), out_dir=str(Path(cfg.out_dir) / "runs"), resume=True,
                       run_name=run_name(model, track, acc, n, seed, lr, tlr), progress=progress)


def run_finished(run_dir, epochs: int) -> bool:
    from common.training import read_metrics

    return (Path(run_dir) / "best.pt").exists() and len(read_metrics(run_dir)) >= epochs


def train_run(tc) -> Path:
    """Train (or resume, or skip when finished) one run; returns its folder."""
    from mri.recon.training import train

    run_dir = tc.run_dir()
    if run_finished(run_dir, tc.epochs):
        return run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    return train(tc)


def best_val_loss(run_dir) -> float:
    from common.training import read_metrics

    return min(r["val_loss"] for r in read_metrics(run_dir))


def run_summary(run_dir) -> dict:
    """Seconds per epoch, best epoch and validation curve of a finished run."""
    from common.training import read_metrics

    records = read_metrics(run_dir)
    best = min(records, key=lambda r: r["val_loss"])
    return {"run": str(run_dir), "seconds_per_epoch": sum(r["seconds"] for r in records) / len(records),
            "best_epoch": best["epoch"], "best_val_loss": best["val_loss"],
            "val_loss": [r["val_loss"] for r in records], "train_loss": [r["train_loss"] for r in records]}


# ------------------------------------------------------------------------------------------ plan
def plan(cfg: ProtocolConfig, shape, chosen: dict | None = None) -> dict:
    """The training runs of the protocol as lists of TrainConfig: {"tuning": [...], "main": [...],
    "curve": [...]}; main/curve need the chosen (lr, tlr) per model (None: the grid's first point)."""
    n_max = max(cfg.curve_n)
    tuning = [train_config(cfg, m, "exact" if "exact" in cfg.tracks else cfg.tracks[0], cfg.tune_acceleration,
                           n_max, cfg.seeds[0], lr, tlr)
              for m in cfg.learned_models for lr, tlr in effective_grid(m, shape, cfg)]
    chosen = chosen or {m: effective_grid(m, shape, cfg)[0] for m in cfg.learned_models}
    main = [train_config(cfg, m, track, acc, n_max, seed, *chosen[m]) for track in cfg.tracks
            for acc in cfg.track_accelerations(track) for m in cfg.learned_models for seed in cfg.seeds]
    curve = [train_config(cfg, m, cfg.tracks[0], cfg.curve_acceleration, n, seed, *chosen[m])
             for m in cfg.curve_models for n in sorted(cfg.curve_n) if n != n_max for seed in cfg.seeds]
    return {"tuning": tuning, "main": main, "curve": curve}


def tune(cfg: ProtocolConfig, shape, log=print, train_missing: bool = True) -> tuple[dict, dict]:
    """Train the tuning grid; returns ({model: (lr, tlr) chosen on validation}, {model: [grid records]})."""
    chosen, records = {}, {}
    runs = plan(cfg, shape)["tuning"]
    if train_missing:
        train_all(runs, cfg, log)
    for tc in runs:
        if run_finished(tc.run_dir(), tc.epochs):
            records.setdefault(tc.model, []).append({"lr": tc.lr, "transform_lr": tc.transform_lr,
                                                     "best_val_loss": best_val_loss(tc.run_dir())})
    for model, recs in records.items():
        best = min(recs, key=lambda r: r["best_val_loss"])
        chosen[model] = (best["lr"], best["transform_lr"])
    return chosen, records


def _timed_train(tc, threads=None) -> str:
    if threads:
        import torch

        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    train_run(tc)
    return f"trained {tc.run_name} in {time.perf_counter() - t0:.1f} s"


def train_all(runs: list, cfg: ProtocolConfig, log=print) -> None:
    """Train the unfinished runs: in this process (jobs = 1), or `jobs` at a time in spawned processes
    (each with cpu_count / jobs threads; one GPU is shared, as the models are small)."""
    import os

    todo = [tc for tc in runs if not run_finished(tc.run_dir(), tc.epochs)]
    if cfg.jobs <= 1:
        for tc in todo:
            log(_timed_train(tc))
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    threads = max(1, (os.cpu_count() or 1) // cfg.jobs)
    with ProcessPoolExecutor(cfg.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_timed_train, tc, threads) for tc in todo]
        for future in as_completed(futures):
            log(future.result())


# ------------------------------------------------------------------------------------------ test
def _test_metrics(volumes: dict) -> list[dict]:
    from mri.recon.metrics import volume_metrics

    rows = []
    for scan, (target, pred) in volumes.items():
        row = {"scan_id": scan}
        for conv in CONVENTIONS:
            m = volume_metrics(target, pred, conv)
            row.update({f"psnr_{conv}": m["psnr"], f"ssim_{conv}": m["ssim"]})
        row.update(nrmse=m["nrmse"], complex_psnr=m["complex_psnr"])
        rows.append(row)
    return rows


def evaluate_model(model, data_dir, acc, test_ids, cache: Path, device="auto") -> dict:
    """Per-volume test metrics (both conventions) of a model, cached in `cache` (.json) with the middle
    slice of the first test volume in `cache`.npz (target, prediction) for the example figure."""
    import numpy as np

    from common.files import write_json_atomic
    from mri.recon.evaluation import reconstruct_volumes

    if cache.exists():
        return json.loads(cache.read_text())
    volumes, seconds = reconstruct_volumes(model, data_dir, acc, test_ids, device=device)
    n_slices = sum(t.shape[0] for t, _ in volumes.values())
    result = {"per_volume": _test_metrics(volumes), "slices_per_s": n_slices / max(seconds, 1e-9)}
    target, pred = volumes[test_ids[0]]
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache.with_suffix(".npz"), target=target[len(target) // 2], prediction=pred[len(pred) // 2])
    write_json_atomic(cache, result)
    return result


def validation_slices(data_dir, val_ids, acc) -> list[dict]:
    """The validation slices as numpy dicts (undersampled kspace, maps, mask, target) for tune_lambda."""
    from mri.recon.training import ReconSlices, open_slices

    reader = open_slices(data_dir, val_ids, acc)
    data = ReconSlices(reader, range(len(reader)))
    return [{k: data[i][k].numpy() for k in ("kspace", "maps", "mask", "target")} for i in range(len(data))]


def classical_lambda(cfg: ProtocolConfig, method: str, track: str, acc: float, val_ids) -> float:
    """λ of a classical method chosen on the validation slices (cached per track and acceleration)."""
    from common.files import write_json_atomic
    from mri.recon.classical import tune_lambda

    cache = Path(cfg.out_dir) / "classical" / f"{method}_{track}_acc{acc:g}_lambda.json"
    if cache.exists():
        return json.loads(cache.read_text())["lambda"]
    lam = tune_lambda(method, validation_slices(cfg.data_dir(track), val_ids, acc), max_iter=cfg.classical_iters)
    write_json_atomic(cache, {"lambda": lam, "val_scans": list(val_ids)})
    return lam


def classical_cell(cfg: ProtocolConfig, name: str, track: str, acc: float, splits: dict, shape) -> dict:
    """Test metrics of an untrained baseline (λ chosen on validation for CG-SENSE / L1-wavelet)."""
    import torch

    from monarch_core import count_parameters
    from mri.recon.models import build_model, transform_parameter_count

    torch.set_num_threads(1)
    lam = classical_lambda(cfg, name, track, acc, splits["val"]) if name != "zf" else None
    model = build_model(name, shape, cfg.scale, **({"lamda": lam, "max_iter": cfg.classical_iters}
                                                   if lam is not None else {}))
    cache = Path(cfg.out_dir) / "test" / f"{name}_{track}_acc{acc:g}.json"
    result = evaluate_model(model, cfg.data_dir(track), acc, splits["test"], cache, "cpu")
    return {"model": name, "track": track, "acceleration": float(acc), "n_train": 0, "seed": None, "lambda": lam,
            "params": count_parameters(model), "transform_params": transform_parameter_count(model), **result,
            "example_file": str(cache.with_suffix(".npz"))}


# ------------------------------------------------------------------------------------------ driver
def run_protocol(cfg: ProtocolConfig, evaluate_only: bool = False, command: str | None = None,
                 progress: bool = False, log=print) -> dict:
    """Run (or resume) the whole protocol and write the report; returns the result dict (see
    protocol_report.write_report for the files). evaluate_only: train nothing, report finished runs."""
    from common.device import resolve_device
    from common.environment import device_name
    from monarch_core import count_parameters
    from mri.recon.models import transform_parameter_count
    from mri.recon.training import load_model

    cfg.validate()
    t_start = time.perf_counter()
    folders = ensure_datasets(cfg, progress) if not evaluate_only else {t: cfg.data_dir(t) for t in cfg.tracks}
    splits = check_splits(folders, cfg.min_test_volumes)
    if max(cfg.curve_n) > len(splits["train"]):
        raise ConfigError(f"curve_n {list(cfg.curve_n)} needs {max(cfg.curve_n)} training subjects; the data has "
                          f"{len(splits['train'])}")
    from mri.recon.training import open_slices

    reader = open_slices(folders[cfg.tracks[0]], splits["test"][:1], None)
    shape = reader.slice_shape(splits["test"][0])
    log(f"splits: {len(splits['train'])} train, {len(splits['val'])} val, {len(splits['test'])} test subjects; "
        f"slices {shape}")

    if not evaluate_only:
        prepare_mask_pools(cfg, shape, log)
    chosen, grid_records = tune(cfg, shape, log, train_missing=not evaluate_only)
    missing = [m for m in cfg.learned_models if m not in chosen]
    runs = plan(cfg, shape, {**{m: effective_grid(m, shape, cfg)[0] for m in missing}, **chosen})
    if not evaluate_only:
        train_all([tc for tc in runs["main"] + runs["curve"] if tc.model in chosen], cfg, log)

    # ---- test, once, after all training
    device = resolve_device(cfg.device)
    eval_dir = Path(cfg.out_dir) / "test"
    cells, not_run = [], []
    for tc in runs["main"] + runs["curve"]:
        run_dir = tc.run_dir()
        if tc.model not in chosen or not run_finished(run_dir, tc.epochs):
            not_run.append(tc.run_name)
            continue
        track = "mismatch" if tc.data_dir == str(cfg.data_dir("mismatch")) and "mismatch" in cfg.tracks else "exact"
        model, _ = load_model(run_dir, "best", device)
        cache = eval_dir / f"{tc.run_name}_e{tc.epochs}.json"  # a run resumed to more epochs is tested again
        result = evaluate_model(model, tc.data_dir, tc.acceleration, splits["test"], cache, device)
        cells.append({"model": tc.model, "track": track, "acceleration": tc.acceleration, "n_train": tc.n_train_scans,
                      "seed": tc.seed, "lr": tc.lr, "transform_lr": tc.transform_lr,
                      "params": count_parameters(model), "transform_params": transform_parameter_count(model),
                      **run_summary(run_dir), **result,
                      "example_file": str(cache.with_suffix(".npz"))})
    jobs = [(cfg, name, track, float(acc), splits, shape) for track in cfg.tracks
            for acc in cfg.track_accelerations(track) for name in cfg.classical_models]
    if cfg.jobs > 1:  # sigpy runs on the CPU, slice by slice: one (method, track, acceleration) per core
        import multiprocessing
        import os
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=multiprocessing.get_context("spawn")) as pool:
            cells += list(pool.map(classical_cell, *zip(*jobs)))
    else:
        cells += [classical_cell(*job) for job in jobs]
    result = {"config": cfg.to_dict(), "command": command or " ".join(["python"] + sys.argv),
              "device": device_name(device), "splits": splits, "shape": list(shape),
              "subjects": scan_subjects(folders[cfg.tracks[0]]), "chosen": {m: list(p) for m, p in chosen.items()},
              "grid": grid_records, "cells": cells, "not_run": not_run,
              "coils": cfg.sim_config(cfg.tracks[0]).coils,
              "mismatch": {k: getattr(cfg.sim_config("mismatch"), k) for k in ("b0_hz", "gradient_delay", "maps")},
              "wall_seconds_this_call": round(time.perf_counter() - t_start, 1)}
    from mri.recon.protocol_report import write_report

    write_report(result, Path(cfg.report_dir), cfg.stem, cfg.n_resamples)
    return result


# ------------------------------------------------------------------------------------------ CLI
def _floats(text):
    return tuple(float(v) for v in text)


def _protocol_command(args):
    cfg = PROTOCOLS[args.preset]
    values = {k: getattr(args, k) for k in ("epochs", "batch_size", "scale", "weight_decay", "loss",
                                             "tune_acceleration", "curve_acceleration", "example_acceleration",
                                             "classical_iters", "min_test_volumes", "n_resamples", "device",
                                             "mask_pool", "jobs",
                                             "out_dir", "report_dir", "stem", "data_root", "sim_preset")}
    for key, conv in (("accelerations", _floats), ("mismatch_accelerations", _floats), ("lr_grid", _floats), ("transform_lr_grid", _floats),
                      ("seeds", lambda v: tuple(int(x) for x in v)), ("curve_n", lambda v: tuple(int(x) for x in v)),
                      ("learned_models", tuple), ("classical_models", tuple), ("curve_models", tuple),
                      ("tracks", tuple)):
        value = getattr(args, key)
        values[key] = conv(value) if value is not None else None
    cfg = cfg.replace(**values)
    sim = dict(cfg.sim_overrides)
    if args.shape:
        sim["shape"] = tuple(args.shape)
    for key in ("coils", "slices", "n_train", "n_val", "n_test"):
        if getattr(args, f"sim_{key}") is not None:
            sim[key] = getattr(args, f"sim_{key}")
    cfg = cfg.replace(sim_overrides=sim)
    if args.dry_run:
        cfg.validate()
        shape = tuple(sim.get("shape", cfg.sim_config(cfg.tracks[0]).shape))
        runs = plan(cfg, shape)
        for part, tcs in runs.items():
            print(f"{part}: {len(tcs)} training runs of {cfg.epochs} epochs")
        n = sum(len(cfg.track_accelerations(t)) for t in cfg.tracks) * len(cfg.classical_models)
        print(f"classical: {n} (track, acceleration, method) test evaluations")
        return 0
    import shlex

    entry = ("python -m mri.recon.protocol" if sys.argv and sys.argv[0].endswith("protocol.py")
             else "python run.py mri protocol")
    command = " ".join([entry] + [shlex.quote(a) for a in sys.argv[1:] if a != "protocol"])
    result = run_protocol(cfg, evaluate_only=args.evaluate_only, progress=not args.quiet, command=command,
                          log=lambda text: print(text, flush=True))
    print(f"wrote {cfg.report_dir}/{cfg.stem}.md, .json, .png, _examples.png; "
          f"{len(result['not_run'])} planned run(s) not finished")
    return 0


def register_protocol(subparsers):
    """Add `mri protocol` to run.py's `mri` group (call from mri/recon/cli.py's register)."""
    text = "the benchmark protocol: data, validation tuning, seeds, both tracks, test once, report"
    p = subparsers.add_parser("protocol", help=text, description=text)
    p.add_argument("--preset", default="cpu", choices=sorted(PROTOCOLS), help="cpu: 64² (≈1 h on one core); gpu: 128²")
    p.add_argument("--sim-preset", default=None, help="mri.data preset of the data (default: the protocol's)")
    p.add_argument("--shape", type=int, nargs=2, default=None, metavar=("H", "W"), help="slice size of the data")
    for key in ("coils", "slices", "n_train", "n_val", "n_test"):
        p.add_argument(f"--sim-{key.replace('_', '-')}", type=int, default=None, metavar="N",
                       help=f"simulation {key} (default: the preset's)")
    p.add_argument("--data-root", default=None, help="folder of the two datasets (default: datasets)")
    p.add_argument("--tracks", nargs="+", default=None, choices=TRACKS, help="default: exact mismatch")
    p.add_argument("--accelerations", nargs="+", default=None, help="default: 2 4 8")
    p.add_argument("--mismatch-accelerations", nargs="+", default=None,
                   help="accelerations of the mismatch track (default: --accelerations)")
    p.add_argument("--learned-models", nargs="+", default=None, metavar="NAME", help=f"default: {' '.join(LEARNED)}")
    p.add_argument("--classical-models", nargs="+", default=None, metavar="NAME", help="default: zf cg-sense l1-wavelet")
    p.add_argument("--seeds", nargs="+", default=None, help="default: 0 1 2")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run (default: the preset's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size of every run (default: the preset's)")
    p.add_argument("--scale", default=None, choices=("tiny", "small", "full"),
                   help="model size preset of every learned model (default: the preset's)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="Adam weight decay of the network weights, never the transforms (default 0)")
    p.add_argument("--loss", default=None, choices=("l1", "ssim", "l1+ssim"), help="training loss (default l1)")
    p.add_argument("--lr-grid", nargs="+", default=None, help="network learning rates (default 1e-3 3e-3)")
    p.add_argument("--transform-lr-grid", nargs="+", default=None, help="transform learning rates (default 1e-3 1e-2)")
    p.add_argument("--tune-acceleration", type=float, default=None, help="acceleration of the tuning (default 4)")
    p.add_argument("--curve-models", nargs="+", default=None, metavar="NAME", help="default: unet-plain unet msense")
    p.add_argument("--curve-n", nargs="+", default=None, help="training subjects of the data-efficiency curve")
    p.add_argument("--curve-acceleration", type=float, default=None, help="default 2")
    p.add_argument("--example-acceleration", type=float, default=None, help="acceleration of the example figure")
    p.add_argument("--classical-iters", type=int, default=None, help="CG-SENSE / L1-wavelet iterations (default 30)")
    p.add_argument("--min-test-volumes", type=int, default=None,
                   help="refuse data with fewer test volumes (default: the preset's)")
    p.add_argument("--n-resamples", type=int, default=None, help="bootstrap resamples (default 10000)")
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--mask-pool", type=int, default=None, metavar="P",
                   help="draw training masks from P per (acceleration, seed) (default: cpu a fresh one per sample, gpu 256)")
    p.add_argument("--jobs", type=int, default=None, help="training runs at once (default: cpu 1, gpu 8)")
    p.add_argument("--out-dir", default=None, help="runs and test caches (default runs/mri-protocol)")
    p.add_argument("--report-dir", default=None, help="report folder (default benchmarks/results)")
    p.add_argument("--stem", default=None, help="report file stem (default mri_protocol)")
    p.add_argument("--evaluate-only", action="store_true", help="train nothing; test and report finished runs")
    p.add_argument("--dry-run", action="store_true", help="print the number of runs and exit")
    p.add_argument("--quiet", action="store_true", help="no progress bars while simulating the data")
    p.set_defaults(func=_protocol_command)
    return p


def main(argv=None) -> int:
    """`python -m mri.recon.protocol [options]`: the same as `run.py mri protocol [options]`."""
    import argparse

    from common.errors import UserError

    parser = argparse.ArgumentParser(prog="python -m mri.recon.protocol")
    register_protocol(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["protocol", *(sys.argv[1:] if argv is None else argv)])
    try:
        return args.func(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
