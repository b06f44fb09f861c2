"""Training of the learned reconstruction models (single process, or data-parallel under torchrun).

    run_dir = train(TrainConfig(data_dir=..., model="msense", acceleration=2, n_train_scans=1, ...))

Scans are the unit of splitting: the first `n_train_scans` scans (sorted ids) train unless
`train_scans` names them. Masks are the per-scan Poisson-disc masks stored in the files ("fixed", as
SKM-TEA) or drawn per slice and epoch from a seeded bank ("random"). Loss: complex L1 (default), SSIM
or both; Adam with two parameter groups — the learnable transforms (`transform_lr`, no weight decay,
which would pull the DFT factors towards zero) and everything else (`lr`, `weight_decay`).
Every epoch `last.pt` is written atomically (model, optimiser, scaler, history, epoch), `best.pt`
when the epoch's loss (validation loss when `val_scans` are given) improves, and a line is appended
to `metrics.jsonl`. `resume=True` continues from `last.pt`; data order and random masks depend only
on (seed, epoch), so a resumed run equals an uninterrupted one.

Under `torchrun --nproc_per_node N` (WORLD_SIZE, RANK, LOCAL_RANK) it trains data-parallel with
DistributedDataParallel (NCCL on CUDA, one GPU per LOCAL_RANK; gloo on CPU). `batch_size` stays the
global batch: every rank walks the same (seed, epoch) order and takes every N-th slice of each batch
(not torch's DistributedSampler, which splits the epoch and pads its tail with repeated slices), and
weights its mean loss by its share of the batch, so DDP's gradient average is the single-process
gradient and N processes reach the same weights as one. Losses are summed over ranks before logging;
rank 0 alone writes the run folder.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from mri.data.h5files import write_text_atomically
from mri.recon.losses import reconstruction_loss
from mri.recon.models import UNTRAINED, build_model


@dataclass
class TrainConfig:
    data_dir: str = "datasets/mri/sim-default"
    model: str = "msense"
    scale: str = "small"                 # model size preset (models.DEFAULTS): tiny | small | full
    model_kwargs: dict = field(default_factory=dict)
    acceleration: float = 4.0
    n_train_scans: int = 1
    train_scans: list | None = None       # explicit scan ids (overrides n_train_scans)
    val_scans: list | None = None         # when given, best.pt is chosen on their loss
    masks: str = "fixed"                  # fixed (stored per scan) | random (seeded bank per slice/epoch)
    mask_bank: int = 32
    echo: int = 0
    max_slices_per_scan: int | None = None  # reduced protocols: keep this many central slices per scan
    epochs: int = 10
    batch_size: int = 4                   # global batch: under torchrun split over the processes
    lr: float = 1e-3
    transform_lr: float = 1e-3
    weight_decay: float = 0.0
    loss: str = "l1"
    amp: bool = False
    seed: int = 0
    device: str = "auto"
    num_workers: int = 0
    out_dir: str = "runs/mri"
    run_name: str | None = None
    resume: bool = False
    progress: bool = True

    def run_dir(self) -> Path:
        name = self.run_name or f"{self.model}_acc{self.acceleration:g}_n{self.n_train_scans}_seed{self.seed}"
        return Path(self.out_dir) / name

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for but torch sees no CUDA device; use --device cpu")
    return torch.device(name)


def save_atomically(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then os.replace (never a torn checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomically(obj, path: Path) -> None:
    write_text_atomically(path, json.dumps(obj, indent=2) + "\n")


# ----------------------------------------------------------------------------------------------- data
def open_slices(data_dir, scans, acceleration, echo=0):
    """The SKM-TEA-layout reader (our simulated data uses the same layout)."""
    from mri.data.skmtea import SkmTeaSlices

    return SkmTeaSlices(data_dir, echo=echo, acceleration=acceleration, scans=scans)


def all_scan_ids(data_dir) -> list[str]:
    from mri.data.skmtea import SkmTeaSlices

    return SkmTeaSlices(data_dir).scan_ids


def split_scans(data_dir, n_train: int, n_test: int) -> tuple[list[str], list[str]]:
    """First `n_train` scans train, last `n_test` scans test (disjoint, or a clear error)."""
    ids = all_scan_ids(data_dir)
    if n_train < 1 or n_test < 1 or n_train + n_test > len(ids):
        raise ValueError(f"{data_dir} holds {len(ids)} scans; cannot take {n_train} training and {n_test} "
                         f"test scans disjointly — simulate more scans (run.py data mri-sim --n-scans ...)")
    return ids[:n_train], ids[-n_test:]


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


class ReconSlices(torch.utils.data.Dataset):
    """Training items from a reader: undersampled kspace, maps, mask, target as torch tensors.

    masks="fixed" uses the reader's stored mask; "random" picks a mask from a bank of `bank` Poisson-disc
    masks drawn once with `seed`, chosen by a generator seeded with (seed, epoch, index).
    """

    def __init__(self, reader, indices, masks="fixed", acceleration=None, seed=0, bank=32):
        if masks not in ("fixed", "random"):
            raise ValueError(f"masks must be 'fixed' or 'random', got {masks!r}")
        self.reader, self.indices, self.masks, self.seed, self.epoch = reader, list(indices), masks, seed, 0
        self.bank = None
        if masks == "random":
            from mri.data.masks import calibration_width, poisson_disc_mask

            shape = reader[self.indices[0]]["kspace"].shape[-2:]
            calib = calibration_width(shape)
            self.bank = np.stack([poisson_disc_mask(shape, acceleration, (calib, calib), seed=seed * 100003 + i)
                                  for i in range(bank)]).astype(np.float32)

    def set_epoch(self, epoch: int):
        self.epoch = int(epoch)

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        item = self.reader[self.indices[i]]
        if self.bank is not None:
            g = np.random.default_rng([self.seed, self.epoch, i])
            mask = self.bank[g.integers(len(self.bank))]
        elif "mask" in item:
            mask = item["mask"]
        else:
            raise KeyError("the reader gives no 'mask': pass an acceleration or use masks='random'")
        mask = torch.from_numpy(np.asarray(mask, dtype=np.float32))
        return {"kspace": torch.from_numpy(item["kspace"]) * mask, "maps": torch.from_numpy(item["maps"]),
                "mask": mask, "target": torch.from_numpy(item["target"]),
                "scan_id": item["scan_id"], "slice_index": item["slice_index"]}


def to_device(batch: dict, device) -> tuple:
    return tuple(batch[k].to(device, non_blocking=True) for k in ("kspace", "maps", "mask", "target"))


# ----------------------------------------------------------------------------------------- optimiser
def parameter_groups(model, lr: float, transform_lr: float, weight_decay: float) -> list[dict]:
    """Transform parameters (any LearnableDFT inside) in their own group: own lr, no weight decay."""
    from monarch_core import LearnableDFT

    transform_ids = {id(p) for m in model.modules() if isinstance(m, LearnableDFT) for p in m.parameters()}
    transform = [p for p in model.parameters() if id(p) in transform_ids]
    other = [p for p in model.parameters() if id(p) not in transform_ids]
    groups = []
    if other:
        groups.append({"params": other, "lr": lr, "weight_decay": weight_decay, "name": "network"})
    if transform:
        groups.append({"params": transform, "lr": transform_lr, "weight_decay": 0.0, "name": "transform"})
    return groups


def _distributed(device_name: str) -> tuple[int, int, torch.device]:
    """(world size, rank, device). Under torchrun it joins the process group — NCCL when training on
    CUDA (each rank on GPU LOCAL_RANK), gloo on CPU, also on a machine that has GPUs — else (1, 0, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = pick_device(device_name)
    if world == 1:
        return 1, 0, device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, dist.get_rank(), device


def rank_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1):
    """This rank's share of the epoch's global batches: (indices, n_local, n_global) per step.

    The global order depends only on (seed, epoch). A rank whose share of a short last batch is empty
    gets the batch's first slice with n_local = 0 (a zero-weight step), because every DDP rank must
    take part in each gradient all-reduce.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + epoch)).tolist()
    batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    return [(b[rank::world] or b[:1], len(b[rank::world]), len(b)) for b in batches]


def _autocast(device: torch.device, enabled: bool):
    dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
    return torch.autocast(device_type=device.type, dtype=dtype, enabled=enabled)


# -------------------------------------------------------------------------------------------- train
def train(config: TrainConfig | dict, callback=None) -> Path:
    """Train `config.model`; returns the run folder (config.json, last.pt, best.pt, metrics.jsonl).

    callback(epoch, record) is called on every rank after each epoch's checkpoint is written.
    """
    cfg = config if isinstance(config, TrainConfig) else TrainConfig(**config)
    if cfg.model in UNTRAINED:
        raise ValueError(f"model {cfg.model!r} has nothing to train; evaluate it directly (run.py mri eval)")
    world, rank, device = _distributed(cfg.device)
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is the global batch and must be divisible by the {world} "
                         f"processes; use a multiple of {world}")
    run_dir = cfg.run_dir()
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)

    train_ids = cfg.train_scans or all_scan_ids(cfg.data_dir)[:cfg.n_train_scans]
    if len(train_ids) < cfg.n_train_scans and not cfg.train_scans:
        raise ValueError(f"{cfg.data_dir} holds only {len(train_ids)} scans, {cfg.n_train_scans} asked for")
    reader = open_slices(cfg.data_dir, train_ids, cfg.acceleration, cfg.echo)
    data = ReconSlices(reader, central_indices(reader, cfg.max_slices_per_scan), cfg.masks, cfg.acceleration,
                       cfg.seed, cfg.mask_bank)
    val = None
    if cfg.val_scans:
        vreader = open_slices(cfg.data_dir, cfg.val_scans, cfg.acceleration, cfg.echo)
        val = ReconSlices(vreader, central_indices(vreader, cfg.max_slices_per_scan))
    shape = tuple(reader[0]["kspace"].shape[-2:])
    model = build_model(cfg.model, shape, cfg.scale, **cfg.model_kwargs).to(device)
    optimizer = torch.optim.Adam(parameter_groups(model, cfg.lr, cfg.transform_lr, cfg.weight_decay))
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp and device.type == "cuda")

    start, history, best = 0, [], math.inf
    last = run_dir / "last.pt"
    if cfg.resume and last.exists():
        state = torch.load(last, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        start, history, best = state["epoch"] + 1, state["history"], state["best"]
    elif rank == 0:
        if run_dir.exists() and (run_dir / "metrics.jsonl").exists():
            (run_dir / "metrics.jsonl").unlink()  # a fresh (not resumed) run restarts the log
        write_json_atomically({"config": cfg.to_dict(), "shape": list(shape), "train_scans": list(train_ids)},
                              run_dir / "config.json")
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                                        else None)

    for epoch in range(start, cfg.epochs):
        data.set_epoch(epoch)
        steps = rank_batches(len(data), cfg.batch_size, cfg.seed, epoch, rank, world)
        loader = torch.utils.data.DataLoader(data, batch_sampler=[s[0] for s in steps], num_workers=cfg.num_workers,
                                             pin_memory=device.type == "cuda")
        net.train()
        total, count, t0 = torch.zeros((), device=device), 0, time.perf_counter()
        bar = _progress(loader, f"{cfg.model} epoch {epoch + 1}/{cfg.epochs}", cfg.progress and rank == 0)
        for batch, (_, n_local, n_global) in zip(bar, steps):
            kspace, maps, mask, target = to_device(batch, device)
            with _autocast(device, cfg.amp):
                loss = reconstruction_loss(cfg.loss, net(kspace, maps, mask), target)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"{cfg.model}: loss became {loss.item()} at epoch {epoch}; lower lr / "
                                         f"transform_lr or the step size")
            optimizer.zero_grad(set_to_none=True)
            # DDP averages over ranks: this weight makes the average the gradient of the global batch mean
            scaler.scale(loss * (n_local * world / n_global)).backward()
            scaler.step(optimizer)
            scaler.update()
            total += loss.detach() * n_local
            count += n_local
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{loss.item():.4g}")
        if world > 1:
            stats = torch.stack([total, torch.tensor(float(count), device=device)])
            dist.all_reduce(stats)
            total, count = stats[0], int(stats[1].item())
        record = {"epoch": epoch, "train_loss": float(total) / max(count, 1), "seconds": time.perf_counter() - t0}
        if val is not None:
            record["val_loss"] = validation_loss(model, val, cfg, device)
        score = record.get("val_loss", record["train_loss"])
        history.append(record)
        improved = score < best
        best = min(best, score)
        if rank == 0:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
                     "epoch": epoch, "history": history, "best": best, "config": cfg.to_dict(), "shape": shape}
            save_atomically(state, last)
            if improved:
                save_atomically(state, run_dir / "best.pt")
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
        if callback is not None:
            callback(epoch, record)
    if world > 1:
        dist.barrier()
    return run_dir


@torch.no_grad()
def validation_loss(model, data, cfg: TrainConfig, device) -> float:
    model.eval()
    loader = torch.utils.data.DataLoader(data, cfg.batch_size)
    total, count = 0.0, 0
    for batch in loader:
        kspace, maps, mask, target = to_device(batch, device)
        total += float(reconstruction_loss(cfg.loss, model(kspace, maps, mask), target)) * len(target)
        count += len(target)
    return total / max(count, 1)


def _progress(iterable, desc, enabled):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, leave=False, dynamic_ncols=True)


def load_model(run_dir, which: str = "best", device="cpu"):
    """Rebuild the model of a run folder and load `best.pt` (or `last.pt`)."""
    path = Path(run_dir) / f"{which}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no checkpoint (expected a run folder written by mri.recon.training.train)")
    state = torch.load(path, map_location=device, weights_only=False)
    cfg = TrainConfig(**state["config"])
    model = build_model(cfg.model, tuple(state["shape"]), cfg.scale, **cfg.model_kwargs).to(device)
    model.load_state_dict(state["model"])
    return model.eval(), cfg
