"""Training of FFT / dense / Monarch FNOs: `train(config) -> run_dir`, on the shared engine
(`common.training.train_loop`: seeding, resume, atomic checkpoints, metrics.jsonl, AMP, DDP, stops).

A lean loop of our own rather than `neuralop.Trainer`, which (2.0.0) saves either every N epochs or
the best model but not both, resumes from the *best* model when one exists, saves no sampler state
(so a resumed run differs from an uninterrupted one) and has no loss scaling for complex weights.
neuraloperator's normalisers are used.

Splits: the file's first `n_train` samples are the training part, the next `n_test` the test split.
The last `n_val` samples of the training part (default 10 %) are held out as validation: the model
trains on the others, `best.pt` is the epoch with the lowest validation relative L2, and the per-epoch
log shows train loss and validation error only. The test split is never read during training:
`evaluation.evaluate(run_dir / "best.pt")` measures it once, afterwards.

Loss: the FNO paper's — per-sample relative L2 over the spatial axes (neuralop's LpLoss(d, p=2)),
summed over the predicted Navier–Stokes frames and over the batch (loss_reduction "sum"). Validation metric: relative L2 over
the whole predicted block per sample, averaged.

This module imports torch only inside functions, so `run.py --help` (which builds the options from
`TrainConfig`) stays fast.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from common.config_cli import option
from common.errors import ConfigError


MODELS = ("fno", "uno")


@dataclass
class TrainConfig:
    """Everything a run depends on (saved in every checkpoint). None means the equation's default.

    FNO paper protocol for Navier–Stokes (the defaults): 1000/200 split, 500 epochs, batch 20, Adam
    lr 1e-3 weight decay 1e-4, StepLR(100, 0.5), n_modes (24, 22) (= modes 12), width 20, 4 layers.
    """
    dataset: str = option("", "dataset file", cli=False)
    run_dir: str = option("", "run folder (checkpoints, metrics, report)", flag="--out", metavar="FOLDER",
                          default_text="runs/pde/<transform>-<date>-<time>")
    transform: str = option("fft", "Fourier transform of the spectral layers", cli=False)
    model: str = option("fno", "neural operator: fno, or uno (neuraloperator's U-shaped UNO: full, half, full "
                        "resolution; see models.build_uno)", choices=MODELS)
    n_train: int | None = option(None, "training-part samples (validation is taken from them)",
                                 default_text="the file's split, else 1000")
    n_val: int | None = option(None, "validation samples held out of the training part; 0: none",
                               default_text="10 %% of --n-train")
    n_test: int | None = option(None, "test samples (read once, after training)",
                                default_text="the file's split, else 200")
    epochs: int = option(500, "training epochs")
    batch_size: int = option(20, "global batch size (split over torchrun processes)")
    lr: float = option(1e-3, "Adam learning rate of the network weights")
    transform_lr: float | None = option(None, "Adam learning rate of the transform parameters",
                                        default_text="--lr")
    weight_decay: float = option(1e-4, "Adam weight decay (L2) of the network weights; never the transforms")
    step_size: int | None = option(100, "StepLR step in epochs (ignored with --cosine-epochs)")
    gamma: float = option(0.5, "StepLR factor")
    cosine_epochs: int | None = option(None, "cosine annealing of the learning rates to 0 over this many epochs "
                                       "(instead of StepLR)", default_text="off")
    n_modes: tuple | None = option(None, "kept modes per axis, neuralop convention",
                                   default_text="the equation's: Navier–Stokes 24,22")
    hidden_channels: int | None = option(None, "FNO width", default_text="the equation's: Navier–Stokes 20")
    n_layers: int = option(4, "FNO layers")
    t_in: int = option(10, "Navier–Stokes input frames")
    t_out: int | None = option(None, "Navier–Stokes predicted frames", default_text="all remaining")
    monarch_sizes: tuple | None = option(None, "b1,b2 of the Monarch factorisation", metavar="B1,B2",
                                         default_text="the most square")
    monarch_channels: bool = option(False, "MonarchLinear channel mixing")
    fno_kwargs: dict = option(help="JSON object of extra FNO arguments", factory=dict)
    seed: int = option(0, "seed of initialisation, sample order and dropout")
    device: str = option("auto", "auto, cpu, cuda or cuda:N", metavar="DEVICE")
    amp: bool = option(False, "float16 autocast with loss scaling (CUDA only)")
    resume: bool = option(False, "continue the run in the output folder (same options)")
    overwrite: bool = option(False, "replace a finished run in the output folder")
    trust_checkpoint: bool = option(False, "load a checkpoint that needs the full unpickler (trusted files only)")
    progress: bool = option(True, "no progress bar", flag="--no-progress")
    stop_after: int | None = option(None, "stop after this many epochs in this call (a planned interruption)",
                                    cli=False)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known - {"resolved"})
        if unknown:
            raise ConfigError(f"unknown training option(s) {unknown}; known: {sorted(known)}")
        return cls(**{k: v for k, v in values.items() if k in known})

    def settings(self):
        """The engine's `RunSettings` of this config."""
        from common.training import RunSettings

        return RunSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, transform_lr=self.transform_lr,
                           weight_decay=self.weight_decay, step_size=self.step_size, gamma=self.gamma,
                           cosine_epochs=self.cosine_epochs,
                           seed=self.seed, device=self.device, amp=self.amp, resume=self.resume,
                           overwrite=self.overwrite, trust_checkpoint=self.trust_checkpoint,
                           stop_after=self.stop_after, progress=self.progress)

    def validate(self) -> None:
        """ConfigError for values that can never work (the engine checks epochs, batch size, rates)."""
        from .models import TRANSFORMS

        self.settings().validate()
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"transform {self.transform!r} is not one of {TRANSFORMS}")
        if self.model not in MODELS:
            raise ConfigError(f"--model {self.model!r} is not one of {MODELS}")
        if self.model == "uno" and self.monarch_channels:
            raise ConfigError("--monarch-channels is implemented for the FNO only", hint="drop it, or use --model fno")
        for name in ("n_train", "n_test", "hidden_channels", "t_out"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"{name} = {value}; expected an integer ≥ 1 (or unset for the default)")
        if self.n_val is not None and self.n_val < 0:
            raise ConfigError(f"n_val = {self.n_val}; expected an integer ≥ 0")
        if self.n_layers < 1 or self.t_in < 1:
            raise ConfigError(f"n_layers = {self.n_layers}, t_in = {self.t_in}; expected integers ≥ 1")
        if self.resume and not self.run_dir:
            raise ConfigError("--resume needs the run folder to continue", hint="pass --out RUN_FOLDER")
        if not 0 <= self.seed < 2 ** 63:  # torch.manual_seed overflows beyond 64 bits
            raise ConfigError(f"--seed {self.seed}; expected an integer in [0, 2**63)")
        if self.n_modes is not None and any(m < 1 for m in self.n_modes):
            raise ConfigError(f"--n-modes {','.join(map(str, self.n_modes))}; expected integers ≥ 1 per axis")


def default_run_dir(transform: str, model: str = "fno") -> str:
    """runs/pde/<transform>[-uno]-<YYYYmmdd-HHMMSS>: a new folder per run, so nothing finished is overwritten."""
    return f"runs/pde/{transform}{'' if model == 'fno' else '-' + model}-{time.strftime('%Y%m%d-%H%M%S')}"


def default_n_val(n_train: int) -> int:
    """10 % of the training part (at least 1 when there are ≥ 2 samples to split)."""
    return max(1, round(0.1 * n_train)) if n_train >= 2 else 0


def prepare(config: TrainConfig, with_test: bool = True, trained_grids=None):
    """Load the data and build the model of a config. Returns a dict with equation, train, val, test
    (Splits; val None when n_val = 0; test None unless with_test), predictor (Predictor wrapping the
    FNO or UNO), resolved n_modes / hidden_channels / split sizes / grid.

    trained_grids: the native grid of every learnable conv (as `models.trained_grids` lists them, and
    checkpoints record them): the transforms are built there instead of for this dataset's grid, so a
    checkpoint's state dict loads and the model runs on the dataset's grid with derived transforms."""
    import torch

    from pde.data.readers import check_field_dtypes, load_dataset, train_test_split

    from .models import build_at, build_fno, build_uno
    from .problems import PROBLEM_DEFAULTS, Predictor, equation_of, make_normalizers, split_off, to_tensors

    data = load_dataset(config.dataset)
    for note in check_field_dtypes(data, config.dataset):  # complex / bool refused, float16 / int converted
        print(f"note: {note}")
    equation = equation_of(data)
    attrs = data.meta.get("attrs", {})
    n_total = min(v.shape[0] for k, v in data.items() if k not in ("t", "grid_x", "grid_y"))
    n_train = config.n_train if config.n_train is not None else int(attrs.get("n_train", min(1000, n_total)))
    n_test = config.n_test if config.n_test is not None else int(attrs.get("n_test", min(200, n_total - n_train)))
    n_val = config.n_val if config.n_val is not None else default_n_val(n_train)
    if n_val >= n_train:
        raise ConfigError(f"n_val = {n_val} leaves no training samples out of n_train = {n_train}",
                          hint="lower --n-val or raise --n-train")
    if n_test < 1:  # training ends with the test evaluation of best.pt: refuse before any file is written
        raise ConfigError(f"{config.dataset} leaves no test samples (n_train = {n_train}, n_test = {n_test}, "
                          f"{n_total} samples in the file)",
                          hint="generate more samples (run.py data … --n), or pass --n-train / --n-test that fit")
    try:
        train_data, test_data = train_test_split(data, n_train, n_test)
    except ValueError as error:
        raise ConfigError(str(error), hint="lower --n-train / --n-test") from None
    part = to_tensors(train_data, equation, config.t_in, config.t_out)
    train, val = split_off(part, n_val)
    test = to_tensors(test_data, equation, config.t_in, config.t_out) if with_test else None
    autoregressive = equation == "navier_stokes_2d"
    defaults = PROBLEM_DEFAULTS[equation]
    n_modes = tuple(config.n_modes) if config.n_modes else defaults["n_modes"]
    hidden = config.hidden_channels or defaults["hidden_channels"]
    grid = tuple(train.x.shape[2:])
    # only the user's own counts: the equation's defaults are sized for the presets' grids
    if config.n_modes and (len(n_modes) != len(grid) or any(m > g for m, g in zip(n_modes, grid))):
        raise ConfigError(f"--n-modes {','.join(map(str, n_modes))} does not fit the grid {grid}; expected one "
                          "count per axis, each ≤ that axis's size", hint="lower --n-modes")
    torch.manual_seed(config.seed)
    channels = dict(in_channels=train.x.shape[1], out_channels=1 if autoregressive else train.y.shape[1],
                    hidden_channels=hidden, n_layers=config.n_layers, monarch_sizes=config.monarch_sizes,
                    grid_size=grid if trained_grids is None else None)
    try:
        if config.model == "uno":  # --fno-kwargs are UNO's keyword arguments here
            model = build_uno(config.transform, n_modes, **channels, **config.fno_kwargs)
        else:
            model = build_fno(config.transform, n_modes, **channels, monarch_channels=config.monarch_channels,
                              **config.fno_kwargs)
        if trained_grids is not None:
            build_at(model, trained_grids)
    except (ValueError, TypeError, AssertionError) as error:  # monarch_core / neuralop reject the options
        raise ConfigError(f"cannot build the {config.transform} {config.model.upper()} for grid {grid}: {error}",
                          hint="check --monarch-sizes, --n-modes and --fno-kwargs") from error
    x_norm, y_norm = make_normalizers(equation, train)  # statistics of the samples trained on only
    predictor = Predictor(model, autoregressive, t_out=train.y.shape[1], x_normalizer=x_norm, y_normalizer=y_norm)
    return {"equation": equation, "train": train, "val": val, "test": test, "predictor": predictor,
            "n_modes": n_modes, "hidden_channels": hidden, "n_train": n_train - n_val, "n_val": n_val,
            "n_test": n_test, "grid": grid}


def predict(predictor, x, device, batch_size: int, amp: bool = False):
    """Predictions for x (N, C_in, *S), in batches, returned on the CPU as float32."""
    import torch

    from common.training import autocast

    predictor.eval()
    outs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            with autocast(device, amp):
                outs.append(predictor(x[start:start + batch_size].to(device)).float().cpu())
    return torch.cat(outs)


def transform_types() -> tuple:
    """The module types whose parameters are the learnable transforms (see common.training)."""
    from monarch_core import LearnableDFT

    return (LearnableDFT,)


class FnoTask:
    """The engine's task for one FNO run (see common.training.TrainingTask).

    Batches: (x (B, C_in, *S), y (B, C_out, *S)) on the device. per_sample_loss: (B,) relative L2 per
    sample summed over predicted frames. validate: mean relative L2 over the validation samples.
    """
    metric_name = "val_rel_l2"
    loss_reduction = "sum"  # the FNO paper's LpLoss(reduction="sum")

    def __init__(self, config: TrainConfig, setup: dict):
        self.config, self.setup = config, setup
        self.train, self.val = setup["train"], setup["val"]
        self.n_train, self.has_validation = int(self.train.x.shape[0]), setup["val"] is not None
        self.name = f"{config.transform}{'+channels' if config.monarch_channels else ''} {config.model.upper()}"
        self.transform_types = transform_types()

    def build_model(self):
        return self.setup["predictor"]

    def batches(self, steps, epoch, device):
        for indices in steps:
            yield self.train.x[indices].to(device), self.train.y[indices].to(device)

    def per_sample_loss(self, model, batch):
        from .problems import relative_l2_per_step

        x, y = batch
        return relative_l2_per_step(model(x).float(), y).sum(dim=1)  # = LpLoss(d, p=2) summed over frames

    def validate(self, model, device) -> float:
        from .problems import relative_l2_per_sample

        pred = predict(model, self.val.x, device, self.config.batch_size, self.config.amp)
        return float(relative_l2_per_sample(pred, self.val.y).mean())

    def describe(self, predictor) -> dict:
        from .models import parameter_counts

        setup = self.setup
        return {"equation": setup["equation"], "model": self.config.model, "n_modes": list(setup["n_modes"]),
                "hidden_channels": setup["hidden_channels"], "n_train": setup["n_train"], "n_val": setup["n_val"],
                "n_test": setup["n_test"], "grid": list(setup["grid"]), "t_out": int(self.train.y.shape[1]),
                "parameters": parameter_counts(predictor.model), **recorded_grids(setup)}


def train(config: TrainConfig | dict, callback=None) -> Path:
    """Train one model; returns the run directory (config.json, last.pt, best.pt, metrics.jsonl).

    With config.resume and an existing run_dir/last.pt, training continues from it (the config of the
    checkpoint must match apart from common.training.RESUME_FREE keys, else CheckpointError).
    """
    from common.distributed import distributed_context
    from common.training import agree, check_run_folder, train_loop

    config = TrainConfig.from_dict(config) if isinstance(config, dict) else config
    config.validate()
    if not config.run_dir:
        config.run_dir = agree(default_run_dir(config.transform, config.model),
                               distributed_context(config.device).world)
    check_run_folder(Path(config.run_dir), config.resume, config.overwrite)  # before the data is read
    setup = prepare(config, with_test=False)
    task = FnoTask(config, setup)
    return train_loop(task, config.settings(), config.run_dir, checkpoint_config(config, setup), callback)


def recorded_grids(setup: dict) -> dict:
    """What checkpoints record about grids: "grid", the training input's spatial size, and
    "trained_grids", the native grid of every learnable conv in module order ([] for FFT models)."""
    from .models import trained_grids

    return {"grid": [int(v) for v in setup["grid"]],
            "trained_grids": [[int(v) for v in g] for g in trained_grids(setup["predictor"].model)]}


def checkpoint_config(config: TrainConfig, setup: dict) -> dict:
    """The config dict every checkpoint holds: the TrainConfig's fields and "resolved" (`recorded_grids`),
    from which `evaluation.load_checkpoint` rebuilds the model at its trained grids.

    Resuming a run written before these keys existed (no "resolved"; no "model", which was then always
    the FNO) leaves them out, so that the resumed configuration still matches its checkpoint's."""
    values = {**asdict(config), "resolved": recorded_grids(setup)}
    last = Path(config.run_dir) / "last.pt"
    if config.resume and last.exists():
        from common.checkpoints import load_checkpoint

        saved = load_checkpoint(last, map_location="cpu", trust=config.trust_checkpoint).get("config", {})
        if "resolved" not in saved:
            del values["resolved"]
        if "model" not in saved and config.model == "fno":
            del values["model"]
    return values
