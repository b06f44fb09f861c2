"""Training of the learned reconstruction models on the shared engine (`common.training.train_loop`:
seeding, resume with a config check, weights_only checkpoints, metrics.jsonl, AMP, DDP, stops).

    run_dir = train(TrainConfig(data_dir=..., model="msense", acceleration=2, n_train_scans=1, ...))

Data: a folder of scans read by a registered reader (`READERS`: "skmtea" — SKM-TEA layout, also our
simulated data — or "fastmri"), chosen by `--format` or, with "auto", by the first file's contents.
Scans are the unit of splitting (slices of one scan stay together). Default scans: the dataset's
meta.json "splits" {"train", "val", "test"} when it has them (simulated data), else the first
`n_train_scans` scans (sorted ids) train and the last `n_test_scans` test (`split_scans`);
`train_scans` / `val_scans` name scans explicitly. `best.pt` is chosen on the validation loss when
there are validation scans (on the training loss otherwise); test scans are never read here.

Masks: "fixed" uses each scan's stored mask (SKM-TEA's Poisson-disc masks; fastMRI: one seeded mask
per volume); "random" draws a fresh Poisson-disc mask for every (seed, epoch, slice) during training
(`mri.data.masks.poisson_disc_mask`), as SKM-TEA trains. Validation always uses the fixed masks.
A random mask is a pure function of (shape, acceleration, seed, epoch, slice) and costs 0.2–0.8 s to
draw, so `random_mask` remembers its masks for the life of the process (bounded, `MASK_MEMO_BYTES`);
every model trained with the same seed sees the same masks. `mask_pool = P` instead gives each
(epoch, slice) member `pool_slot(seed, epoch, slice, P)` of a pool of P masks drawn once per (shape,
acceleration, seed) (`mask_pool`): masks still differ between samples and replay with the seed, but
only P are drawn; `mask_pool_dir` caches pools as .npy files that other processes read.
Loss: complex L1 (default), SSIM or both, per slice, averaged over the global batch. The optimiser
rule (transform parameters: `transform_lr`, no weight decay) and the learning-rate schedule (constant,
StepLR `step_size`/`gamma`, or cosine over `cosine_epochs`) are the engine's.

Under `torchrun --nproc_per_node N` it trains data-parallel with `batch_size` as the global batch
(see common.training). This module imports torch only inside functions, so `run.py --help` (which
builds its options from `TrainConfig`) stays fast.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from common.config_cli import option, option_flags
from common.errors import ConfigError, FormatError
from mri.recon.model_names import LOSSES, is_trainable, known_models

MASK_MODES = ("fixed", "random")
FORMATS = ("auto", "skmtea", "fastmri")


@dataclass
class TrainConfig:
    data_dir: str = option("datasets/mri/sim-default", "folder of .h5 scans (SKM-TEA layout or fastMRI)",
                           flag="--data", metavar="FOLDER")
    format: str = option("auto", "reader of the scans; auto: from the first file's contents", choices=FORMATS)
    model: str = option("msense", "model to train (see `mri.recon.models.REGISTRY`)", cli=False)
    scale: str = option("small", "model size preset: full = meddlr knee config (8 steps, 128 ch) and fastMRI "
                        "U-Net (32 ch)", choices=("tiny", "small", "full"))
    model_kwargs: dict = option(help="single model settings", factory=dict, cli=False)
    acceleration: float = option(4.0, "undersampling factor")
    n_train_scans: int = option(1, "the first N scans of meta.json's train split (or, without splits, of all "
                                   "scans) train")
    train_scans: list | None = option(None, "explicit training scan ids", metavar="SCAN",
                                      default_text="meta.json's train split, else the first N scans")
    val_scans: list | None = option(None, "validation scan ids (their loss picks best.pt)", metavar="SCAN",
                                    default_text="meta.json's val split, else none")
    masks: str = option("fixed", "fixed: the per-scan stored masks; random: a fresh seeded Poisson-disc mask "
                        "per slice and epoch", choices=MASK_MODES)
    mask_pool: int | None = option(None, "with --masks random: each (epoch, slice) takes one of P masks drawn "
                                   "once per (acceleration, seed), picked by a hash of (seed, epoch, slice), "
                                   "instead of drawing a fresh mask per sample", metavar="P",
                                   default_text="a fresh mask per (seed, epoch, slice)")
    mask_pool_dir: str | None = option(None, "folder caching the mask pools as .npy files (read when present, "
                                       "written when drawn), shared by runs and processes", metavar="FOLDER",
                                       default_text="pools are drawn in each process")
    echo: int = option(0, "echo to read (SKM-TEA layout)")
    max_slices_per_scan: int | None = option(None, "keep only this many central slices per scan",
                                             default_text="all")
    epochs: int = option(10, "training epochs")
    batch_size: int = option(4, "global batch size (split over torchrun processes)")
    lr: float = option(1e-3, "Adam learning rate of the network weights")
    transform_lr: float = option(1e-3, "Adam learning rate of the learnable transforms")
    weight_decay: float = option(0.0, "Adam weight decay of the network weights; never the transforms")
    step_size: int | None = option(None, "StepLR: multiply the learning rates by --lr-gamma every N epochs",
                                   flag="--lr-step-size", metavar="N", default_text="constant learning rates")
    gamma: float = option(0.5, "StepLR factor (with --lr-step-size)", flag="--lr-gamma")
    cosine_epochs: int | None = option(None, "cosine annealing of the learning rates to 0 over N epochs "
                                       "(instead of StepLR)", metavar="N", default_text="none")
    loss: str = option("l1", "training loss", choices=LOSSES)
    amp: bool = option(False, "float16 autocast with loss scaling (CUDA only)")
    seed: int = option(0, "seed of initialisation, slice order and random masks")
    device: str = option("auto", "auto, cpu, cuda or cuda:N", metavar="DEVICE")
    num_workers: int = option(0, "DataLoader worker processes", flag="--workers")
    out_dir: str = option("runs/mri", "parent folder of the run folder", flag="--out", metavar="FOLDER")
    run_name: str | None = option(None, "run folder name", default_text="<model>_acc<A>_n<N>_seed<S>-<date>-<time>")
    resume: bool = option(False, "continue the run folder's last.pt (same options)")
    overwrite: bool = option(False, "replace a finished run in the run folder")
    trust_checkpoint: bool = option(False, "load a checkpoint that needs the full unpickler (trusted files only)")
    progress: bool = option(True, "no progress bar", flag="--quiet")
    stop_after: int | None = option(None, "stop after this many epochs in this call", cli=False)

    def run_dir(self) -> Path:
        """out_dir/run_name (run_name is fixed by `train` before the first file is written)."""
        name = self.run_name or f"{self.model}_acc{self.acceleration:g}_n{self.n_train_scans}_seed{self.seed}"
        return Path(self.out_dir) / name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)

    def settings(self):
        from common.training import RunSettings

        return RunSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, transform_lr=self.transform_lr,
                           weight_decay=self.weight_decay, step_size=self.step_size, gamma=self.gamma,
                           cosine_epochs=self.cosine_epochs, seed=self.seed, device=self.device, amp=self.amp,
                           resume=self.resume, overwrite=self.overwrite, trust_checkpoint=self.trust_checkpoint,
                           stop_after=self.stop_after, progress=self.progress)

    def validate(self) -> None:
        """ConfigError for values that can never work (before any file is created)."""
        self.settings().validate(option_flags(type(self)))  # the hint names --lr-gamma, not the engine's gamma
        if self.model not in known_models():
            raise ConfigError(f"unknown model {self.model!r}; choose from {known_models()}")
        if not is_trainable(self.model):
            raise ConfigError(f"model {self.model!r} has nothing to train", hint="evaluate it directly (run.py mri eval)")
        for name, value, allowed in (("masks", self.masks, MASK_MODES), ("loss", self.loss, LOSSES),
                                     ("format", self.format, FORMATS)):
            if value not in allowed:
                raise ConfigError(f"{name} = {value!r}; expected one of {allowed}")
        if not math.isfinite(self.acceleration) or self.acceleration <= 1 or self.n_train_scans < 1:
            raise ConfigError(f"acceleration = {self.acceleration}, n_train_scans = {self.n_train_scans}; expected "
                              "an acceleration > 1 and at least 1 training scan")
        if self.mask_pool is not None and (self.mask_pool < 1 or self.masks != "random"):
            raise ConfigError(f"mask_pool = {self.mask_pool} with masks = {self.masks!r}; expected a pool of ≥ 1 "
                              "masks with masks = 'random'", hint="pass --masks random, or leave --mask-pool unset")
        if self.max_slices_per_scan is not None and self.max_slices_per_scan < 1:
            raise ConfigError(f"max_slices_per_scan = {self.max_slices_per_scan}; expected ≥ 1 (or unset for all)")
        if self.echo < 0:
            raise ConfigError(f"--echo {self.echo}; expected an echo index ≥ 0")
        if self.num_workers < 0:
            raise ConfigError(f"--workers {self.num_workers}; expected ≥ 0 DataLoader processes (0: none)")
        from common.files import check_output_parent
        from mri.recon.models import check_overrides

        check_overrides(self.model_kwargs)
        check_output_parent(self.out_dir)
        if self.mask_pool_dir is not None:
            if Path(self.mask_pool_dir).exists() and not Path(self.mask_pool_dir).is_dir():
                raise ConfigError(f"--mask-pool-dir {self.mask_pool_dir} is a file; expected a folder",
                                  hint="choose another --mask-pool-dir")
            check_output_parent(self.mask_pool_dir, "--mask-pool-dir")


# ----------------------------------------------------------------------------------------------- data
def _skmtea(data_dir, scans, acceleration, echo, training):
    from mri.data.skmtea import SkmTeaSlices

    return SkmTeaSlices(data_dir, echo=echo, acceleration=acceleration, scans=scans)


def _fastmri(data_dir, scans, acceleration, echo, training):
    from mri.data.fastmri import FastMRISlices

    return FastMRISlices(data_dir, acceleration=acceleration, scans=scans, fixed_masks=True)


#: format name -> opener(data_dir, scans, acceleration, echo, training) -> reader (see mri.data.slices)
READERS = {"skmtea": _skmtea, "fastmri": _fastmri}


def detect_format(data_dir) -> str:
    """"skmtea" (5-D kspace with stored maps) or "fastmri" (4-D (slice, coil, H, W) kspace), from the
    first .h5 file of `data_dir`; FormatError when it is neither (or unreadable)."""
    from mri.data.h5files import open_h5

    path = Path(data_dir)
    files = sorted(path.glob("*.h5")) if path.is_dir() else [path]
    files = [f for f in files if not f.name.endswith(".maps.h5")]
    if not files or not files[0].is_file():
        raise FormatError(f"{data_dir}: no .h5 scan files", hint="simulate data with `run.py data mri-sim` "
                          "or point --data at SKM-TEA / fastMRI files")
    with open_h5(files[0], "scan") as f:
        ndim = f["kspace"].ndim if "kspace" in f else None
        if ndim == 5 and "maps" in f:
            return "skmtea"
        if ndim == 4:
            return "fastmri"
    raise FormatError(f"{files[0]}: neither SKM-TEA layout (5-D kspace + maps) nor fastMRI (4-D kspace); "
                      f"found kspace with {ndim} dims", hint="pass --format skmtea or fastmri")


def open_slices(data_dir, scans, acceleration, echo=0, format: str = "auto", training: bool = False):
    """The reader of `format` ("auto": detect_format) for these scans (None: all)."""
    format = detect_format(data_dir) if format == "auto" else format
    if format not in READERS:
        raise ConfigError(f"format {format!r} is not one of {sorted(READERS)}")
    return READERS[format](data_dir, scans, acceleration, echo, training)


def all_scan_ids(data_dir, format: str = "auto") -> list[str]:
    return list(open_slices(data_dir, None, None, format=format).scan_ids)


def dataset_splits(data_dir) -> dict | None:
    """meta.json's {"train", "val", "test"} scan ids when the dataset names its splits, else None."""
    path = Path(data_dir) / "meta.json"
    if not path.is_file():
        return None
    splits = json.loads(path.read_text()).get("splits")
    return {k: list(splits.get(k, [])) for k in ("train", "val", "test")} if isinstance(splits, dict) else None


def split_scans(data_dir, n_train: int, n_test: int) -> tuple[list[str], list[str]]:
    """First `n_train` scans train, last `n_test` scans test (disjoint, or a clear error)."""
    ids = all_scan_ids(data_dir)
    if n_train < 1 or n_test < 1 or n_train + n_test > len(ids):
        raise ConfigError(f"{data_dir} holds {len(ids)} scans; cannot take {n_train} training and {n_test} "
                          f"test scans disjointly", hint="simulate more scans (run.py data mri-sim --n-scans ...)")
    return ids[:n_train], ids[-n_test:]


def training_scans(cfg: TrainConfig) -> tuple[list[str], list[str]]:
    """(training scan ids, validation scan ids) of a config (see the module docstring)."""
    splits = dataset_splits(cfg.data_dir)
    if cfg.train_scans:
        train_ids = list(cfg.train_scans)
    elif splits and splits["train"]:
        train_ids = splits["train"][:cfg.n_train_scans]
    else:
        train_ids = all_scan_ids(cfg.data_dir, cfg.format)[:cfg.n_train_scans]
    if len(train_ids) < cfg.n_train_scans and not cfg.train_scans:
        raise ConfigError(f"{cfg.data_dir} has only {len(train_ids)} training scans, {cfg.n_train_scans} asked for",
                          hint="lower --n-train-scans or simulate more scans")
    val_ids = list(cfg.val_scans) if cfg.val_scans else (splits["val"] if splits else [])
    if cfg.train_scans or cfg.val_scans:  # ids the user typed: check them before any reader opens them
        known = all_scan_ids(cfg.data_dir, cfg.format)
        for option, ids in (("--train-scans", cfg.train_scans or []), ("--val-scans", cfg.val_scans or [])):
            unknown = [scan for scan in ids if scan not in known]
            if unknown:
                raise ConfigError(f"{option}: {cfg.data_dir} has no scan(s) {unknown}; it has {known}",
                                  hint=f"pass {option} with ids from that list")
    overlap = sorted(set(train_ids) & set(val_ids))
    if overlap:
        raise ConfigError(f"scans {overlap} are both training and validation scans; splits must be disjoint")
    return train_ids, val_ids


def central_indices(dataset, max_per_scan: int | None) -> list[int]:
    """Indices of the dataset keeping `max_per_scan` central slices of each scan (all when None)."""
    by_scan: dict[int, list[int]] = {}
    for i, (file_index, _) in enumerate(dataset._index):
        by_scan.setdefault(file_index, []).append(i)
    keep = []
    for idx in by_scan.values():
        if max_per_scan is not None and len(idx) > max_per_scan:
            start = (len(idx) - max_per_scan) // 2
            idx = idx[start:start + max_per_scan]
        keep.extend(idx)
    return keep


def draw_mask(shape, acceleration: float, seed: int, epoch: int, index: int):
    """A Poisson-disc mask (H, W) bool drawn from (seed, epoch, index) only (no memo: see random_mask)."""
    import numpy as np

    from mri.data.masks import calibration_width, poisson_disc_mask

    calib = calibration_width(shape)
    draw = int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])
    return np.asarray(poisson_disc_mask(shape, acceleration, (calib, calib), seed=draw), dtype=bool)


class MaskMemo:
    """Least-recently-used store of bool masks, bounded by their total bytes (the oldest go first)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.nbytes, self.items = int(max_bytes), 0, OrderedDict()

    def get(self, key, draw):
        """The mask stored under `key`, else draw() stored (the caller must not modify it)."""
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = self.items[key] = draw()
        self.nbytes += value.nbytes
        while self.nbytes > self.max_bytes and len(self.items) > 1:
            self.nbytes -= self.items.popitem(last=False)[1].nbytes
        return value

    def clear(self):
        self.items.clear()
        self.nbytes = 0


#: bytes of bool masks `random_mask` keeps per process (512 MB: 131,072 masks of 64², 32,768 of 128²)
MASK_MEMO_BYTES = 512 * 2**20
_MASK_MEMO = MaskMemo(MASK_MEMO_BYTES)


def _mask_key(shape, acceleration, seed) -> tuple:
    return tuple(int(n) for n in shape), float(acceleration), int(seed)


def random_mask(shape, acceleration: float, seed: int, epoch: int, index: int):
    """A Poisson-disc mask (H, W) float32 drawn from (seed, epoch, index) only: `draw_mask`, remembered
    for the life of the process (a fresh float32 copy each call)."""
    import numpy as np

    key = (*_mask_key(shape, acceleration, seed), int(epoch), int(index))
    return _MASK_MEMO.get(key, lambda: draw_mask(*key)).astype(np.float32)


#: pool member j of (shape, acceleration, seed) is draw_mask(shape, acceleration, seed, POOL_EPOCH, j)
POOL_EPOCH = 1_000_000


def pool_slot(seed: int, epoch: int, index: int, size: int) -> int:
    """The pool member (0 ≤ slot < size) that slice `index` trains with in `epoch`."""
    import numpy as np

    return int(np.random.SeedSequence([int(seed), int(epoch), int(index), 1]).generate_state(1)[0]) % int(size)


def draw_mask_pool(shape, acceleration: float, seed: int, members) -> "np.ndarray":
    """(len(members), H, W) bool: the pool members `members` of (shape, acceleration, seed)."""
    import numpy as np

    return np.stack([draw_mask(shape, acceleration, seed, POOL_EPOCH, j) for j in members])


def mask_pool_file(folder, shape, acceleration: float, seed: int, size: int) -> Path:
    """Where a pool of `size` masks of (shape, acceleration, seed) is cached in `folder`."""
    return Path(folder) / f"pool{size}_{shape[0]}x{shape[1]}_acc{float(acceleration):g}_seed{int(seed)}.npy"


def save_mask_pool(path, masks) -> Path:
    """Write a (P, H, W) pool atomically as a bool .npy file (readers never see half a file)."""
    import numpy as np

    from common.files import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: np.save would append ".npy"
        np.save(f, np.asarray(masks, dtype=bool))
    return Path(path)


@functools.lru_cache(maxsize=32)
def mask_pool(shape, acceleration: float, seed: int, size: int, folder: str | None = None):
    """(size, H, W) bool: the pool of (shape, acceleration, seed), read from `folder` when cached there,
    else drawn here (and saved there when `folder` is given); kept for the life of the process.
    Read-only: the caller must not modify it."""
    import numpy as np

    shape, acceleration, seed = _mask_key(shape, acceleration, seed)
    path = mask_pool_file(folder, shape, acceleration, seed, size) if folder else None
    if path is not None and path.is_file():
        masks = np.load(path)
        if masks.shape != (size, *shape) or masks.dtype != bool:
            raise FormatError(f"{path}: mask pool of shape {masks.shape} {masks.dtype}, expected {(size, *shape)} "
                              "bool", hint="delete the file; it is drawn again")
    else:
        masks = draw_mask_pool(shape, acceleration, seed, range(size))
        if path is not None:
            save_mask_pool(path, masks)
    masks.flags.writeable = False
    return masks


class ReconSlices:
    """Training items from a reader: undersampled kspace, maps, mask, target as torch tensors.

    masks="fixed" uses the reader's stored mask; "random" draws `random_mask(seed, epoch, index)`,
    or with `mask_pool` = P takes member `pool_slot(seed, epoch, index, P)` of `mask_pool(...)`
    (cached in `mask_pool_dir` when given). Items: kspace, maps (coils, H, W) complex64; mask (H, W) float32; target (H, W) complex64;
    scan_id; slice_index.
    """

    def __init__(self, reader, indices, masks="fixed", acceleration=None, seed=0, mask_pool: int | None = None,
                 mask_pool_dir=None):
        if masks not in MASK_MODES:
            raise ConfigError(f"masks must be one of {MASK_MODES}, got {masks!r}")
        self.reader, self.indices, self.masks, self.seed, self.epoch = reader, list(indices), masks, seed, 0
        self.acceleration, self.mask_pool = acceleration, mask_pool
        self.mask_pool_dir = None if mask_pool_dir is None else str(mask_pool_dir)

    def training_mask(self, shape, index: int):
        """(H, W) float32 random-mode mask of dataset index `index` in the current epoch."""
        import numpy as np

        if self.mask_pool:
            pool = mask_pool(tuple(int(n) for n in shape), float(self.acceleration), int(self.seed),
                             int(self.mask_pool), self.mask_pool_dir)
            return pool[pool_slot(self.seed, self.epoch, index, self.mask_pool)].astype(np.float32)
        return random_mask(shape, self.acceleration, self.seed, self.epoch, index)

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        import numpy as np
        import torch

        item = self.reader[self.indices[i]]
        if self.masks == "random":
            mask = self.training_mask(item["kspace"].shape[-2:], self.indices[i])
        elif "mask" in item:
            mask = item["mask"]
        else:
            raise ConfigError("the reader gives no 'mask': pass an acceleration or use masks='random'")
        mask = torch.from_numpy(np.asarray(mask, dtype=np.float32))
        out = {"kspace": torch.from_numpy(item["kspace"]) * mask, "maps": torch.from_numpy(item["maps"]),
               "mask": mask, "target": torch.from_numpy(item["target"]),
               "scan_id": item["scan_id"], "slice_index": item["slice_index"]}
        if "physics" in item:  # simulated scans: delay and B0 for the oracle-physics models
            out["physics"] = item["physics"]
        return out


def to_device(batch: dict, device) -> tuple:
    """(kspace, maps, mask, target) of a collated batch on `device`."""
    return tuple(batch[k].to(device, non_blocking=True) for k in ("kspace", "maps", "mask", "target"))


def physics_of(batch: dict, device) -> dict | None:
    """The batch's acquisition physics ({"b0_field_hz": (B, H, W), "gradient_delay": (B,), "readout_bw_hz":
    (B,)}, mri.data.skmtea.scan_physics) on `device`, or None when the reader gives none."""
    physics = batch.get("physics")
    return None if physics is None else {k: v.to(device) for k, v in physics.items()}


def run_model(model, kspace, maps, mask, physics=None):
    """model(kspace, maps, mask), plus the physics for a model that needs it (oracle-physics models)."""
    if getattr(getattr(model, "module", model), "needs_physics", False):  # .module: under DDP
        if physics is None:
            raise ConfigError("this oracle-physics model needs the scans' gradient delay and B0 field map; "
                              "train and evaluate it on simulated mismatch data (run.py data mri-sim --mismatch ...)")
        return model(kspace, maps, mask, physics=physics)
    return model(kspace, maps, mask)


def parameter_groups(model, lr: float, transform_lr: float, weight_decay: float) -> list[dict]:
    """The engine's two Adam groups for an MRI model (transforms: LearnableDFT parameters)."""
    from common.training import parameter_groups as groups

    return groups(model, transform_types(), lr, transform_lr, weight_decay)


def transform_types() -> tuple:
    from monarch_core import LearnableDFT

    return (LearnableDFT,)


# -------------------------------------------------------------------------------------------- task
class ReconTask:
    """The engine's task for one reconstruction model (see common.training.TrainingTask).

    Batches: (kspace (B, coils, H, W) undersampled, maps (B, coils, H, W), mask (B, H, W), target
    (B, H, W)) on the device. per_sample_loss: (B,) reconstruction loss per slice. validate: the mean
    loss over the validation slices (fixed masks).
    """
    metric_name = "val_loss"
    loss_reduction = "mean"

    def __init__(self, cfg: TrainConfig, train_ids: list, val_ids: list):
        reader = open_slices(cfg.data_dir, train_ids, cfg.acceleration, cfg.echo, cfg.format, training=True)
        self.cfg, self.train_ids, self.val_ids = cfg, train_ids, val_ids
        self.data = ReconSlices(reader, central_indices(reader, cfg.max_slices_per_scan), cfg.masks,
                                cfg.acceleration, cfg.seed, cfg.mask_pool, cfg.mask_pool_dir)
        self.val = None
        if val_ids:
            vreader = open_slices(cfg.data_dir, val_ids, cfg.acceleration, cfg.echo, cfg.format)
            self.val = ReconSlices(vreader, central_indices(vreader, cfg.max_slices_per_scan))
        self.shape = tuple(reader[0]["kspace"].shape[-2:])
        self.name, self.n_train, self.has_validation = cfg.model, len(self.data), self.val is not None
        self.transform_types = transform_types()

    def build_model(self):
        from mri.recon.models import build_model

        return build_model(self.cfg.model, self.shape, self.cfg.scale, **self.cfg.model_kwargs)

    def batches(self, steps, epoch, device):
        import torch

        self.data.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(self.data, batch_sampler=steps, num_workers=self.cfg.num_workers,
                                             pin_memory=device.type == "cuda")
        for batch in loader:
            yield (*to_device(batch, device), physics_of(batch, device))

    def per_sample_loss(self, model, batch):
        from mri.recon.losses import reconstruction_loss

        kspace, maps, mask, target, physics = batch
        return reconstruction_loss(self.cfg.loss, run_model(model, kspace, maps, mask, physics), target,
                                   per_sample=True)

    def validate(self, model, device) -> float:
        import torch

        from mri.recon.losses import reconstruction_loss

        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in torch.utils.data.DataLoader(self.val, self.cfg.batch_size):
                kspace, maps, mask, target = to_device(batch, device)
                pred = run_model(model, kspace, maps, mask, physics_of(batch, device))
                total += float(reconstruction_loss(self.cfg.loss, pred, target, per_sample=True).sum())
                count += len(target)
        return total / max(count, 1)

    def describe(self, model) -> dict:
        from monarch_core import count_parameters

        return {"shape": list(self.shape), "train_scans": list(self.train_ids), "val_scans": list(self.val_ids),
                "slices": self.n_train, "parameters": count_parameters(model)}


def train(config: TrainConfig | dict, callback=None) -> Path:
    """Train `config.model`; returns the run folder (config.json, last.pt, best.pt, metrics.jsonl).

    callback(epoch, record) is called on every rank after each epoch's checkpoint is written.
    Raises ConfigError / RunExistsError / CheckpointError / NonFiniteError (common.errors).
    """
    from common.distributed import distributed_context
    from common.training import agree, check_run_folder, train_loop

    cfg = config if isinstance(config, TrainConfig) else TrainConfig.from_dict(config)
    cfg.validate()
    if cfg.run_name is None:
        if cfg.resume:
            raise ConfigError("--resume needs the run to continue", hint="pass --run-name (and --out) of the run")
        stamp = agree(time.strftime("%Y%m%d-%H%M%S"), distributed_context(cfg.device).world)
        cfg.run_name = f"{cfg.model}_acc{cfg.acceleration:g}_n{cfg.n_train_scans}_seed{cfg.seed}-{stamp}"
    check_run_folder(cfg.run_dir(), cfg.resume, cfg.overwrite)
    train_ids, val_ids = training_scans(cfg)
    task = ReconTask(cfg, train_ids, val_ids)
    return train_loop(task, cfg.settings(), cfg.run_dir(), {**cfg.to_dict(), "shape": list(task.shape)}, callback)


def load_model(run_dir, which: str = "best", device="cpu", trust: bool = False):
    """Rebuild the model of a run folder and load `best.pt` (or `last.pt`) with weights_only=True."""
    from common.checkpoints import load_checkpoint
    from mri.recon.models import build_model

    path = Path(run_dir) / f"{which}.pt"
    state = load_checkpoint(path, map_location=device, trust=trust)
    values = dict(state["config"])
    shape = tuple(values.pop("shape"))
    cfg = TrainConfig.from_dict(values)
    model = build_model(cfg.model, shape, cfg.scale, **cfg.model_kwargs).to(device)
    model.load_state_dict(state["model"])
    return model.eval(), cfg
