"""One training engine for both applications: `train_loop(task, settings, run_dir, config)`.

The application supplies a *task* (what to learn) and the engine owns *how* a run is trained, so
seeding, resume, checkpoints, logging, AMP, data parallelism and the stopping rules are the same for
the Fourier neural operators (`pde`) and the MRI reconstructions (`mri`).

The task (duck-typed; see `TrainingTask`):

    name: str                       progress-bar label ("monarch FNO", "msense")
    metric_name: str                metrics.jsonl key of the validation metric ("val_rel_l2", "val_loss")
    n_train: int                    training samples, indexed 0 … n_train − 1
    loss_reduction: "sum" | "mean"  the objective is the sum / mean over the GLOBAL batch of per-sample losses
    has_validation: bool            whether `validate` exists (validation data was given)
    transform_types: tuple[type]    modules whose parameters are the learnable transforms
    build_model() -> nn.Module      called right after torch.manual_seed(seed): same seed, same weights
    batches(steps, epoch, device)   one batch per list of sample indices in `steps`, on `device`
    per_sample_loss(model, batch)   (n,) float tensor: the loss of each sample of the batch
    validate(model, device) -> float  the validation metric (lower is better) of the bare model
    describe(model) -> dict         plain values recorded in config.json under "resolved"

What a run does (`RunSettings` holds the knobs the engine reads):

- Seeding: the model is built after `torch.manual_seed(seed)`; each epoch's sample order and the
  torch RNG used inside the epoch (dropout) derive from (seed, epoch) only, so no RNG state has to be
  saved and a resumed run is bit-identical to an uninterrupted one (on the CPU).
- Splits: the task gives training and validation data; `best.pt` is chosen on the validation metric
  only (on the training loss when the task has no validation data). The engine never sees a test
  split: the application evaluates the selected checkpoint on it once, after training.
- Files (rank 0 only), per epoch: one JSON line in `metrics.jsonl` ({"epoch", "train_loss",
  <metric_name>, "lr", "seconds"}), then `last.pt` and, when the selection score improved, `best.pt`,
  written atomically with `common.checkpoints.save_checkpoint` (tensors and plain values only: the
  config as a dict; no RNG state is needed, see Seeding). `config.json` records the config.
- Resume (`resume=True`): continues from `last.pt` after checking that the saved config equals the
  current one except for `RESUME_FREE` keys (else CheckpointError naming the differing keys), and
  trims `metrics.jsonl` to the epochs before the resumed one, so a killed-and-resumed run has the
  same lines as an uninterrupted one (apart from the measured seconds). A finished run resumes to a
  no-op. A new run into a folder holding a checkpoint or metrics raises RunExistsError unless
  `overwrite=True`.
- Data parallelism under torchrun (WORLD_SIZE > 1): `batch_size` is the GLOBAL batch. Every rank
  walks the same (seed, epoch) order and takes every world-th sample of each global batch
  (`rank_batches`). One rule makes DDP's gradient average equal the single-process gradient: a rank's
  objective is  world × Σ_local per-sample losses / d,  with d = 1 for loss_reduction "sum" and
  d = the global batch size for "mean". A rank whose share of a short last batch is empty takes one
  sample with weight 0, because every rank must join every all-reduce.
- AMP (`amp=True`, CUDA only; a no-op on the CPU): float16 autocast with `LossScaler`, a dynamic loss
  scaler that handles complex gradients (torch's GradScaler cannot unscale them).
- Stopping: a non-finite loss raises NonFiniteError (epoch and batch named) unless the AMP scaler
  accounts for it (a float16 overflow: the step is skipped and the scale halved); once the scale
  falls below `LossScaler.min_scale`, the overflow is not float16's fault and the run stops too. The
  last checkpoint written stays the last good one. `stop_after` ends the call after that many epochs
  (a planned interruption, used by the resume tests).
- Optimiser: Adam with two parameter groups (`parameter_groups`): the learnable transforms (the
  parameters of `task.transform_types` modules) get `transform_lr` and NO weight decay — they start
  at the exact DFT, and decay would pull them towards the zero matrix, a penalty only the learned
  variants pay (the FFT baseline has no such parameters); every other parameter gets `lr` and
  `weight_decay` (Adam's L2 form, as the FNO paper). Optional StepLR (`step_size`, `gamma`) or cosine
  annealing (`cosine_epochs`).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Protocol

import torch
from torch import nn

from .checkpoints import load_checkpoint, save_checkpoint
from .distributed import distributed_context, global_sum
from .errors import CheckpointError, ConfigError, NonFiniteError, RunExistsError
from .files import write_json_atomic, write_text_atomic

#: Config keys that may change between a run and its resumption.
RESUME_FREE = frozenset({"epochs", "resume", "progress", "device", "stop_after", "overwrite", "trust_checkpoint",
                         "run_dir", "out_dir", "run_name", "num_workers", "mask_pool_dir"})
#: Files whose presence marks a folder as holding a run.
RUN_FILES = ("last.pt", "best.pt", "metrics.jsonl")


class TrainingTask(Protocol):
    """What an application supplies to `train_loop` (see the module docstring)."""
    name: str
    metric_name: str
    n_train: int
    loss_reduction: str
    has_validation: bool
    transform_types: tuple

    def build_model(self) -> nn.Module: ...
    def batches(self, steps: list[list[int]], epoch: int, device: torch.device) -> Iterable: ...
    def per_sample_loss(self, model: nn.Module, batch) -> torch.Tensor: ...
    def validate(self, model: nn.Module, device: torch.device) -> float: ...
    def describe(self, model: nn.Module) -> dict: ...


@dataclass
class RunSettings:
    """The knobs of `train_loop` (the applications fill them from their TrainConfig)."""
    epochs: int
    batch_size: int
    lr: float
    transform_lr: float | None = None   # None: lr
    weight_decay: float = 0.0           # network parameters only (never the transforms)
    step_size: int | None = None        # StepLR step in epochs; None: constant lr
    gamma: float = 0.5
    cosine_epochs: int | None = None    # cosine annealing to 0 over this many epochs (instead of StepLR)
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    resume: bool = False
    overwrite: bool = False
    trust_checkpoint: bool = False
    stop_after: int | None = None
    progress: bool = True

    def validate(self, flags: dict | None = None) -> None:
        """Raise ConfigError for values that can never work (before any file is created). flags: the
        application's command-line flag per field, for the hint (default --field-name)."""
        finite = math.isfinite  # inf passes "> 0" but is no learning rate / decay / factor
        checks = [("epochs", self.epochs >= 1, "an integer ≥ 1"), ("batch_size", self.batch_size >= 1, "an integer ≥ 1"),
                  ("lr", finite(self.lr) and self.lr > 0, "a finite number > 0"),
                  ("transform_lr", self.transform_lr is None or (finite(self.transform_lr) and self.transform_lr > 0),
                   "a finite number > 0 (or unset)"),
                  ("weight_decay", finite(self.weight_decay) and self.weight_decay >= 0, "a finite number ≥ 0"),
                  ("step_size", self.step_size is None or self.step_size >= 1, "an integer ≥ 1 (or unset)"),
                  ("gamma", finite(self.gamma) and self.gamma > 0, "a finite number > 0"),
                  ("seed", 0 <= self.seed < 2 ** 63, "an integer in [0, 2**63)"),
                  ("cosine_epochs", self.cosine_epochs is None or self.cosine_epochs >= 1, "an integer ≥ 1 (or unset)"),
                  ("stop_after", self.stop_after is None or self.stop_after >= 1, "an integer ≥ 1 (or unset)")]
        for name, ok, expected in checks:
            if not ok:
                raise ConfigError(f"{name} = {getattr(self, name)!r}; expected {expected}",
                                  hint=f"pass {(flags or {}).get(name, '--' + name.replace('_', '-'))} with a valid value")


class LossScaler:
    """Dynamic loss scaling for float16 training that also handles complex gradients.

    torch.amp.GradScaler refuses complex gradients ("_amp_foreach_non_finite_check_and_unscale_ not
    implemented for 'ComplexFloat'"), and spectral weights are complex. Same policy as GradScaler:
    scale the loss, unscale the gradients, skip the step and halve the scale on inf/NaN, double it
    after `growth_interval` good steps. Disabled, it is a plain backward + step.
    """
    min_scale = 1.0  # below this, a non-finite gradient is not a float16 overflow

    def __init__(self, enabled: bool, init_scale: float = 2.0 ** 16, growth_interval: int = 2000):
        self.enabled, self.scale, self.growth_interval, self.good_steps = enabled, init_scale, growth_interval, 0

    def backward_and_step(self, loss: torch.Tensor, optimizer) -> bool:
        """Backward of `loss` and an optimizer step; returns False when the step was skipped."""
        if not self.enabled:
            loss.backward()
            optimizer.step()
            return True
        (loss * self.scale).backward()
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        finite = all(bool(torch.isfinite(torch.view_as_real(g) if g.is_complex() else g).all()) for g in grads)
        if not finite:
            self.scale, self.good_steps = self.scale / 2, 0
            return False
        for g in grads:
            g.div_(self.scale)
        optimizer.step()
        self.good_steps += 1
        if self.good_steps % self.growth_interval == 0:
            self.scale *= 2
        return True

    def state_dict(self) -> dict:
        return {"scale": float(self.scale), "good_steps": int(self.good_steps)}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.good_steps = state["scale"], state["good_steps"]


def transform_parameters(model: nn.Module, transform_types: tuple) -> list[nn.Parameter]:
    """The parameters of every module of one of `transform_types` inside `model` (each once)."""
    seen, params = set(), []
    for module in model.modules():
        if transform_types and isinstance(module, tuple(transform_types)):
            for p in module.parameters():
                if id(p) not in seen:
                    seen.add(id(p))
                    params.append(p)
    return params


def parameter_groups(model: nn.Module, transform_types: tuple, lr: float, transform_lr: float | None,
                     weight_decay: float) -> list[dict]:
    """Adam groups: "network" (lr, weight_decay) and "transform" (transform_lr or lr, no weight decay)."""
    transform = transform_parameters(model, transform_types)
    ids = {id(p) for p in transform}
    other = [p for p in model.parameters() if id(p) not in ids]
    groups = []
    if other:
        groups.append({"params": other, "lr": lr, "weight_decay": weight_decay, "name": "network"})
    if transform:
        groups.append({"params": transform, "lr": transform_lr or lr, "weight_decay": 0.0, "name": "transform"})
    return groups


def rank_batches(n: int, batch_size: int, seed: int, epoch: int, rank: int = 0, world: int = 1):
    """This rank's share of the epoch's global batches: [(indices, n_local, n_global)] per step.

    The global order depends only on (seed, epoch). A rank whose share of a short last batch is empty
    gets the batch's first sample with n_local = 0 (a zero-weight step): every DDP rank must take part
    in each gradient all-reduce.
    """
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 7919 + epoch)).tolist()
    batches = [order[s:s + batch_size] for s in range(0, n, batch_size)]
    return [(b[rank::world] or b[:1], len(b[rank::world]), len(b)) for b in batches]


def make_scheduler(optimizer, settings: RunSettings):
    """The epoch-wise lr schedule of a run: cosine annealing to 0 over `cosine_epochs`, StepLR(`step_size`,
    `gamma`), or None (constant)."""
    if settings.cosine_epochs:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, settings.cosine_epochs)
    if settings.step_size:
        return torch.optim.lr_scheduler.StepLR(optimizer, settings.step_size, settings.gamma)
    return None


def autocast(device: torch.device, amp: bool):
    """float16 autocast on CUDA when `amp`; a disabled context otherwise (CPU runs in float32)."""
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


def plain_config(config: dict) -> dict:
    """`config` with tuples as lists (JSON and checkpoint round trips give lists back)."""
    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return {k: plain(v) for k, v in config.items()}


def config_differences(saved: dict, current: dict) -> list[str]:
    """Keys (outside RESUME_FREE) whose values differ between a saved and the current config."""
    saved, current = plain_config(saved), plain_config(current)
    keys = (set(saved) | set(current)) - RESUME_FREE
    return sorted(k for k in keys if saved.get(k) != current.get(k))


def check_resumable(saved: dict, current: dict, path) -> None:
    """Raise CheckpointError naming the keys in which `current` differs from the checkpoint's config."""
    differ = config_differences(saved, current)
    if differ:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {current.get(k)!r}" for k in differ)
        raise CheckpointError(f"{path} was written with a different configuration ({details}); cannot resume",
                              hint="resume with the same options, or start a new run in another folder")


def check_run_folder(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start a new run over a folder that holds one (RunExistsError), unless overwrite."""
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if found and not resume and not overwrite:
        raise RunExistsError(f"{run_dir} already holds a run ({', '.join(found)}); not overwriting it",
                             hint="pass --resume to continue it, --overwrite to replace it, or choose another --out")


def agree(value, world: int):
    """Rank 0's value on every rank (e.g. a timestamped run folder); `value` itself when not distributed."""
    if world == 1:
        return value
    holder = [value]
    torch.distributed.broadcast_object_list(holder, src=0)
    return holder[0]


def _metric_records(path: Path) -> list[dict]:
    """The records of a metrics.jsonl in epoch order. A last line without its newline that does not parse
    is an append cut short (a kill mid-write, or a copy taken while the run wrote) and is left out — the
    run resumes from its checkpoint and writes that epoch again; a bad line anywhere else is a ConfigError."""
    if not path.exists():
        return []
    text = path.read_text()
    lines = text.splitlines()
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except ValueError:
            if number == len(lines) and not text.endswith("\n"):
                break
            raise ConfigError(f"{path}: line {number} is not a JSON record ({line[:60]!r})",
                              hint="the file was edited or damaged; remove the run folder to train it again") from None
    return sorted(records, key=lambda r: r["epoch"])


def trim_metrics(path: Path, start_epoch: int) -> None:
    """Keep the metric lines of epochs before `start_epoch` (a killed run may have written more)."""
    if not path.exists():
        return
    keep = [r for r in _metric_records(path) if r["epoch"] < start_epoch]
    write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in keep))


def read_metrics(run_dir) -> list[dict]:
    """The per-epoch records of a run folder's metrics.jsonl in epoch order ([] when there is none; a torn
    last line left out, see `_metric_records`)."""
    return _metric_records(Path(run_dir) / "metrics.jsonl")


def model_state(model: nn.Module) -> dict:
    """The model's tensors by name (a state_dict without extras such as neuralop's "_metadata", which
    holds constructor objects that a weights_only checkpoint cannot carry)."""
    return {k: v for k, v in model.state_dict().items() if torch.is_tensor(v)}


def train_loop(task: TrainingTask, settings: RunSettings, run_dir, config: dict,
               callback: Callable[[int, dict], None] | None = None) -> Path:
    """Train `task` with `settings` into `run_dir`; returns the run folder.

    config: the application's full config as plain values (saved in config.json and every checkpoint,
    compared on resume). callback(epoch, record) runs on every rank after each epoch's files are written;
    when it returns True the run ends there (a stopping rule; it must answer the same on every rank).
    Raises ConfigError, RunExistsError, CheckpointError, NonFiniteError (see the module docstring).
    """
    settings.validate()
    context = distributed_context(settings.device)
    world, rank, device = context.world, context.rank, context.device
    if settings.batch_size % world:
        raise ConfigError(f"batch_size {settings.batch_size} is the global batch and must be divisible by the "
                          f"{world} processes", hint=f"use a multiple of {world}")
    run_dir = Path(run_dir)
    check_run_folder(run_dir, settings.resume, settings.overwrite)
    config = plain_config(config)

    torch.manual_seed(settings.seed)
    model = task.build_model().to(device)
    optimizer = torch.optim.Adam(parameter_groups(model, task.transform_types, settings.lr, settings.transform_lr,
                                                  settings.weight_decay))
    scheduler = make_scheduler(optimizer, settings)
    scaler = LossScaler(enabled=settings.amp and device.type == "cuda")
    start_epoch, best = 0, math.inf
    last_path = run_dir / "last.pt"
    if settings.resume and last_path.exists():
        state = load_checkpoint(last_path, map_location=device, trust=settings.trust_checkpoint)
        check_resumable(state["config"], config, last_path)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best = state["epoch"] + 1, state["best"]
    if context.is_main:
        if not settings.resume:
            for name in RUN_FILES:  # overwrite=True (check_run_folder refused otherwise)
                (run_dir / name).unlink(missing_ok=True)
        write_json_atomic(run_dir / "config.json", {**config, "resolved": task.describe(model)})
        trim_metrics(run_dir / "metrics.jsonl", start_epoch)

    net = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    end_epoch = settings.epochs if settings.stop_after is None else min(settings.epochs,
                                                                        start_epoch + settings.stop_after)
    bar = _progress(settings.progress and context.is_main, start_epoch, settings.epochs, task.name)
    for epoch in range(start_epoch, end_epoch):
        torch.manual_seed(settings.seed * 100_003 + epoch)  # randomness inside the epoch (dropout) is replayable
        steps = rank_batches(task.n_train, settings.batch_size, settings.seed, epoch, rank, world)
        tic = time.perf_counter()
        net.train()
        total = torch.zeros((), dtype=torch.float64, device=device)
        batches = task.batches([indices for indices, _, _ in steps], epoch, device)
        for step, (batch, (_, n_local, n_global)) in enumerate(zip(batches, steps)):
            optimizer.zero_grad(set_to_none=True)
            with autocast(device, settings.amp):
                per_sample = task.per_sample_loss(net, batch)
            local = per_sample.float()[:n_local].sum()
            batch_sum = global_sum(local.detach().double(), world)
            if not torch.isfinite(batch_sum) and (not scaler.enabled or scaler.scale / 2 < LossScaler.min_scale):
                raise NonFiniteError(f"{task.name}: the training loss became {float(batch_sum)} at epoch {epoch}, "
                                     f"batch {step}; {last_path} holds the last good epoch",
                                     hint="lower --lr / --transform-lr, or check the data for non-finite values")
            divisor = 1 if task.loss_reduction == "sum" else n_global
            # DDP averages gradients over ranks: × world / divisor makes that the global-batch gradient
            scaler.backward_and_step(local * (world / divisor), optimizer)
            if torch.isfinite(batch_sum):
                total += batch_sum
        if scheduler is not None:
            scheduler.step()
        record = {"epoch": epoch, "train_loss": float(total) / task.n_train}
        if task.has_validation:
            record[task.metric_name] = float(task.validate(model, device))
        record.update(lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - tic)
        score = record[task.metric_name] if task.has_validation else record["train_loss"]
        improved = score < best
        best = min(best, score)
        if context.is_main:
            state = {"epoch": epoch, "config": config, "model": model_state(model), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict() if scheduler is not None else None,
                     "scaler": scaler.state_dict(), "best": best, "metrics": record}
            with open(run_dir / "metrics.jsonl", "a") as handle:  # before the checkpoint: see trim_metrics
                handle.write(json.dumps(record) + "\n")
            if improved:
                save_checkpoint(state, run_dir / "best.pt")
            save_checkpoint(state, last_path)
        bar.update(1)
        bar.set_postfix({k: f"{v:.4g}" for k, v in record.items() if k in ("train_loss", task.metric_name)})
        if callback is not None and callback(epoch, record) is True:
            break  # the caller's stopping rule (e.g. converged): the files of this epoch are complete
    bar.close()
    if world > 1:
        torch.distributed.barrier()
    return run_dir


def _progress(enabled: bool, start: int, total: int, name: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=f"training {name}", unit="epoch", disable=not enabled, leave=False)


__all__ = ["RunSettings", "TrainingTask", "LossScaler", "train_loop", "parameter_groups", "transform_parameters",
           "rank_batches", "autocast", "model_state", "check_resumable", "config_differences", "check_run_folder", "agree",
           "read_metrics", "trim_metrics", "RESUME_FREE", "RUN_FILES"]
