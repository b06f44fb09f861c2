"""Training of FFT / dense / Monarch FNOs: `train(config) -> run_dir`.

A lean loop of our own rather than `neuralop.Trainer`, which (2.0.0) saves either every N epochs or
the best model but not both, resumes from the *best* model when one exists, saves no RNG or sampler
state (so a resumed run differs from an uninterrupted one), writes checkpoints non-atomically and has
no GradScaler for fp16 AMP. neuraloperator's `LpLoss` is the loss and its normalisers are used.

What a run does:
- seeded model initialisation; each epoch's sample order and RNG state derive from (seed, epoch), so
  `resume=True` continues a killed run to the same weights as an uninterrupted one (bit-exact on CPU);
- after every epoch, `last.pt` is written atomically (temporary file + os.replace) and `best.pt` when
  the test error improves; one JSON line per epoch goes to `metrics.jsonl`; a tqdm bar shows progress;
- `amp=True` autocasts on CUDA to float16 with dynamic loss scaling (`LossScaler`: torch's GradScaler
  cannot unscale the complex spectral weights); the learnable transforms run in float32;
- under `torchrun --nproc_per_node N` (environment variables WORLD_SIZE, RANK, LOCAL_RANK) it trains
  data-parallel with DistributedDataParallel (NCCL on GPUs, gloo on CPU): each rank takes every N-th
  sample of the epoch's global order, the per-rank loss is scaled by N so that the averaged gradient
  equals the single-process one, and rank 0 writes all files.

Loss: the FNO paper's — per-sample relative L2 (LpLoss, d = spatial dims, summed over the batch),
summed over the predicted Navier–Stokes frames. Metric: relative L2 over the whole predicted block per
test sample, averaged.
"""
from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from pde.data.writer import write_text_atomically

from .models import build_fno, parameter_counts
from .problems import PROBLEM_DEFAULTS, Predictor, equation_of, make_normalizers, relative_l2_per_sample, to_tensors


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in every checkpoint). None means the equation's default.

    FNO paper protocol for Navier–Stokes (the defaults): 1000/200 split, 500 epochs, batch 20, Adam
    lr 1e-3 weight decay 1e-4, StepLR(100, 0.5), n_modes (24, 22) (= modes 12), width 20, 4 layers.
    """
    dataset: str = ""
    run_dir: str = "runs/pde"
    transform: str = "fft"  # fft | dense | monarch
    n_train: int | None = None  # default: the file's n_train attribute, else 1000
    n_test: int | None = None  # default: the file's n_test attribute, else 200
    epochs: int = 500
    batch_size: int = 20
    lr: float = 1e-3
    transform_lr: float | None = None  # learning rate of the transform parameters (default: lr)
    weight_decay: float = 1e-4
    step_size: int = 100
    gamma: float = 0.5
    n_modes: tuple | None = None
    hidden_channels: int | None = None
    n_layers: int = 4
    t_in: int = 10
    t_out: int | None = None  # Navier–Stokes: predicted frames (default: all remaining)
    monarch_sizes: tuple | None = None
    monarch_channels: bool = False
    fno_kwargs: dict = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    amp: bool = False
    resume: bool = False
    progress: bool = True
    stop_after: int | None = None  # stop after this many epochs in this call (a planned interruption)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**values)


def atomic_save(obj, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then os.replace (never a half-written file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


class LossScaler:
    """Dynamic loss scaling for float16 training that also handles complex gradients.

    torch.amp.GradScaler refuses complex gradients ("_amp_foreach_non_finite_check_and_unscale_ not
    implemented for 'ComplexFloat'"), and SpectralConv's weights are complex. Same policy as GradScaler:
    scale the loss, unscale the gradients, skip the step and halve the scale on inf/NaN, double it
    after `growth_interval` good steps. Disabled, it is a plain backward + step.
    """

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
        return {"scale": self.scale, "good_steps": self.good_steps}

    def load_state_dict(self, state: dict) -> None:
        self.scale, self.good_steps = state["scale"], state["good_steps"]


def distributed_context() -> tuple[int, int, int]:
    """(world_size, rank, local_rank) from torchrun's environment; (1, 0, 0) without it."""
    return int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("RANK", 0)), int(os.environ.get("LOCAL_RANK", 0))


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device 'cuda' requested but torch.cuda.is_available() is False; use --device cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def prepare(config: TrainConfig):
    """Load the data and build the model of a config. Returns a dict with equation, train, test (Splits),
    predictor (Predictor wrapping the FNO), resolved n_modes / hidden_channels / split sizes."""
    from pde.data.readers import load_dataset, train_test_split

    data = load_dataset(config.dataset)
    equation = equation_of(data)
    attrs = data.meta.get("attrs", {})
    n_total = min(v.shape[0] for k, v in data.items() if k not in ("t", "grid_x", "grid_y"))
    n_train = config.n_train if config.n_train is not None else int(attrs.get("n_train", min(1000, n_total)))
    n_test = config.n_test if config.n_test is not None else int(attrs.get("n_test", min(200, n_total - n_train)))
    train_data, test_data = train_test_split(data, n_train, n_test)
    autoregressive = equation == "navier_stokes_2d"
    train = to_tensors(train_data, equation, config.t_in, config.t_out)
    test = to_tensors(test_data, equation, config.t_in, config.t_out)
    defaults = PROBLEM_DEFAULTS[equation]
    n_modes = tuple(config.n_modes) if config.n_modes else defaults["n_modes"]
    hidden = config.hidden_channels or defaults["hidden_channels"]
    grid = tuple(train.x.shape[2:])
    torch.manual_seed(config.seed)
    model = build_fno(config.transform, n_modes, in_channels=train.x.shape[1], out_channels=1 if autoregressive
                      else train.y.shape[1], hidden_channels=hidden, n_layers=config.n_layers, grid_size=grid,
                      monarch_sizes=config.monarch_sizes, monarch_channels=config.monarch_channels,
                      **config.fno_kwargs)
    x_norm, y_norm = make_normalizers(equation, train)
    predictor = Predictor(model, autoregressive, t_out=train.y.shape[1], x_normalizer=x_norm, y_normalizer=y_norm)
    return {"equation": equation, "train": train, "test": test, "predictor": predictor, "n_modes": n_modes,
            "hidden_channels": hidden, "n_train": n_train, "n_test": n_test, "grid": grid}


def make_optimizer(config: TrainConfig, model: torch.nn.Module):
    """Adam (the FNO paper's, weight decay as L2) with the transform parameters in their own group."""
    transform_params = [p for n, p in model.named_parameters() if "_transforms." in n]
    ids = {id(p) for p in transform_params}
    groups = [{"params": [p for p in model.parameters() if id(p) not in ids]}]
    if transform_params:
        groups.append({"params": transform_params, "lr": config.transform_lr or config.lr})
    optimizer = torch.optim.Adam(groups, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
    return optimizer, scheduler


def make_loss(n_spatial: int):
    """Relative L2 per sample and frame, summed over the batch and the frames (the FNO paper's loss)."""
    from neuralop.losses import LpLoss

    return LpLoss(d=n_spatial, p=2, reduction="sum")  # norms over the last d axes; sum over (batch, frames)


@torch.no_grad()
def predict(predictor: torch.nn.Module, x: torch.Tensor, device, batch_size: int, amp: bool = False) -> torch.Tensor:
    """Predictions for x (N, C_in, *S), in batches, returned on the CPU as float32."""
    predictor.eval()
    outs = []
    for start in range(0, x.shape[0], batch_size):
        with _autocast(device, amp):
            outs.append(predictor(x[start:start + batch_size].to(device)).float().cpu())
    return torch.cat(outs)


def _autocast(device, amp: bool):
    return torch.autocast(device_type=device.type, dtype=torch.float16, enabled=amp and device.type == "cuda")


def train(config: TrainConfig | dict) -> Path:
    """Train one model; returns the run directory (config.json, last.pt, best.pt, metrics.jsonl).

    With config.resume and an existing run_dir/last.pt, training continues from it (the config of the
    checkpoint must match apart from epochs / resume / progress / stop_after / device).
    """
    config = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    world, rank, local_rank = distributed_context()
    device = resolve_device(config.device, local_rank)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must be divisible by the {world} processes")
    run_dir = Path(config.run_dir)
    is_main = rank == 0
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)

    setup = prepare(config)
    predictor = setup["predictor"].to(device)
    train_split, test_split = setup["train"], setup["test"]
    optimizer, scheduler = make_optimizer(config, predictor.model)
    scaler = LossScaler(enabled=config.amp and device.type == "cuda")
    loss_fn = make_loss(len(setup["grid"]))
    start_epoch, best = 0, math.inf
    checkpoint_path = run_dir / "last.pt"
    if config.resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        _check_resumable(state["config"], config, checkpoint_path)
        predictor.model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start_epoch, best = state["epoch"] + 1, state["best_test_rel_l2"]
    if is_main:
        _write_json(run_dir / "config.json", {**asdict(config), "resolved": _resolved(setup, predictor.model)})
        _trim_metrics(run_dir / "metrics.jsonl", start_epoch)
    model = predictor
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(predictor, device_ids=[device.index] if device.type == "cuda"
                                                          else None)
    n_train = train_split.x.shape[0]
    end_epoch = config.epochs if config.stop_after is None else min(config.epochs, start_epoch + config.stop_after)
    bar = _progress(config.progress and is_main, start_epoch, config.epochs)
    for epoch in range(start_epoch, end_epoch):
        torch.manual_seed(config.seed * 100_003 + epoch)  # any randomness inside the epoch (dropout) is replayable
        order = torch.randperm(n_train, generator=torch.Generator().manual_seed(config.seed * 7919 + epoch))
        tic = time.perf_counter()
        model.train()
        train_loss = 0.0
        for start in range(0, n_train, config.batch_size):
            batch = order[start:start + config.batch_size][rank::world]
            x, y = train_split.x[batch].to(device), train_split.y[batch].to(device)
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, config.amp):
                pred = model(x)
            loss = loss_fn(pred.float(), y)
            scaler.backward_and_step(loss * world, optimizer)  # DDP averages gradients: × world = global sum
            train_loss += _global_sum(loss.detach(), world)
        scheduler.step()
        epoch_seconds = time.perf_counter() - tic
        per_frame = train_split.y.shape[1] if predictor.autoregressive else 1
        pred_test = predict(predictor, test_split.x, device, config.batch_size, config.amp)
        test_rel = float(relative_l2_per_sample(pred_test, test_split.y).mean())
        record = {"epoch": epoch, "train_loss": train_loss / (n_train * per_frame), "test_rel_l2": test_rel,
                  "lr": optimizer.param_groups[0]["lr"], "epoch_seconds": epoch_seconds}
        improved = test_rel < best
        best = min(best, test_rel)
        if is_main:
            state = {"epoch": epoch, "config": asdict(config), "model": predictor.model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "scaler": scaler.state_dict(), "best_test_rel_l2": best, "metrics": record}
            with open(run_dir / "metrics.jsonl", "a") as handle:  # before the checkpoint: see _trim_metrics
                handle.write(json.dumps(record) + "\n")
            if improved:
                atomic_save(state, run_dir / "best.pt")
            atomic_save(state, checkpoint_path)
        bar.update(1)
        bar.set_postfix(train=f"{record['train_loss']:.4f}", test=f"{test_rel:.4f}")
    bar.close()
    if world > 1:
        torch.distributed.barrier()
    return run_dir


def _global_sum(value: torch.Tensor, world: int) -> float:
    if world > 1:
        value = value.clone()
        torch.distributed.all_reduce(value)
    return float(value)


def _progress(enabled: bool, start: int, total: int):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc="epochs", disable=not enabled, leave=False)


_RESUME_FREE = {"epochs", "resume", "progress", "stop_after", "device", "run_dir"}


def _check_resumable(saved: dict, config: TrainConfig, path: Path) -> None:
    current = asdict(config)
    differ = sorted(k for k in current if k not in _RESUME_FREE and _normal(saved.get(k)) != _normal(current[k]))
    if differ:
        details = ", ".join(f"{k}: {saved.get(k)!r} → {current[k]!r}" for k in differ)
        raise ValueError(f"{path} was written with a different configuration ({details}); resume with the same "
                         "options or use another run directory")


def _normal(value):
    return list(value) if isinstance(value, tuple) else value


def _resolved(setup: dict, model) -> dict:
    return {"equation": setup["equation"], "n_modes": list(setup["n_modes"]), "hidden_channels": setup["hidden_channels"],
            "n_train": setup["n_train"], "n_test": setup["n_test"], "grid": list(setup["grid"]),
            "t_out": int(setup["train"].y.shape[1]), "parameters": parameter_counts(model)}


def _trim_metrics(path: Path, start_epoch: int) -> None:
    """Keep the metric lines of epochs before `start_epoch` (a killed run may have written more)."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["epoch"] < start_epoch]
    write_text_atomically(path, "".join(line + "\n" for line in keep))


def _write_json(path: Path, obj) -> None:
    write_text_atomically(path, json.dumps(obj, indent=2, default=str))
