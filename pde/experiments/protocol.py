"""The comparison protocol: validation-selected, equally tuned, several seeds, with controls.

    python run.py pde protocol DATASET --tune --seeds 0 1 2 --jobs 2 --out runs/protocol/ns

What one command does (every value is an option, see `register_protocol`):

1. Splits the file's samples three ways: the first `n_train` samples are the training block, of which
   the last `n_val` are held out as the validation split (never trained on); the next `n_test`
   samples are the test split. Checkpoint selection (best.pt) and every hyper-parameter choice use the
   validation split only; the test split is read once, at the end, by each selected checkpoint.
2. `--tune`: every transform gets the same number of grid points at the same epochs (`--tune-epochs`):
       fft                    lr × weight decay     (no transform parameters: weight decay is its knob)
       dense, diag            lr × transform lr
       monarch                lr × transform lr — or lr × (transform lr @ block sizes) pairs given by
                              `--monarch-axis`: block sizes are spent from Monarch's own budget
   A point's score is its best validation error over the epochs (the error of its best.pt). The chosen
   points go to OUT/tuning.json. Without --tune, the settings come from `--settings tuning.json` or
   the single values --lr / --transform-lr / --weight-decay.
3. Controls: "diag" (the fixed FFT with a learnable per-frequency complex gain: any learnable
   spectrum) and "fft-more-modes" (the FFT FNO keeping more modes, at the parameter count of the
   Monarch model; `more_modes_for` picks the n_modes whose total parameters are closest to
   Monarch's among those keeping at least the default modes on every axis; it reuses FFT's tuned
   settings — a control, not a competitor, so it gets no tuning budget of its own). Optional
   "fft-padded" (`--methods ...,fft-padded`): the FFT FNO with domain padding (`--padding`, a fraction
   of the grid), the FNO paper's own fix for non-periodic problems (Darcy); it is a baseline, so it gets
   the same grid as fft (lr × weight decay) and the same budget.
4. Final runs: every selected setting at `--epochs` for each of `--seeds`, each run in its own folder
   OUT/final/<method>/seed<k>/, whose result.json holds per-test-sample and per-step errors, the
   validation learning curve (epoch, seconds) and timings measured in that run.
5. The report (`pde.experiments.protocol_report`): mean ± s.e. over seeds, ratios to FFT with a 95 %
   paired bootstrap interval over (seed, test sample) pairs, per-step errors, parameters, seconds per
   epoch, total training time, learning curves; several OUT folders merge (each GPU run adds a seed).

GPU preset (one seed per command; each command adds a seed, the report merges the folders):

    python run.py data ns-v1e-3                                  # 1200 samples, 64², 50 frames
    python run.py pde protocol datasets/ns-v1e-3.h5 --preset gpu --seeds 0 --out runs/protocol/gpu-s0 \
        [--settings runs/protocol/<tuned>/tuning.json]
    python run.py pde protocol datasets/ns-v1e-3.h5 --preset gpu --seeds 1 --out runs/protocol/gpu-s1 \
        --merge runs/protocol/gpu-s0 --report runs/protocol/gpu-report

Runs go to up to `--jobs` subprocesses at once, each with OMP_NUM_THREADS=`--threads` (default 1). A
run whose result.json exists is skipped when the command is rerun (resumable); a killed run resumes
from its last.pt.

Validation hold-out: when `TrainConfig` has an `n_val` field (the training engine's validation split),
the runs use it. Otherwise the driver gets the same split from the engine's two-way one: it trains on
n_train − n_val samples and gives the engine the validation samples as its "test" split
(n_test = n_val), so the engine's per-epoch evaluation and best.pt selection are on validation, and the
real test samples (after the training block) are never loaded during training; the final evaluation
here reads them (`evaluate_test`).

Data at a coarser grid: `subsample_dataset` makes a stride-k copy of a dataset file — the way FNO's
published data were made (generated at 256², stored at 64² by keeping every 4th point).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from common.config_cli import comma_ints
from common.errors import ConfigError, FormatError
from common.files import write_json_atomic

METHODS = ("fft", "dense", "monarch", "diag", "fft-more-modes", "fft-padded")
TRANSFORMS_TUNED = ("fft", "dense", "monarch", "diag", "fft-padded")
#: Methods that are an FFT FNO (no transform parameters: their second grid axis is weight decay).
FFT_METHODS = ("fft", "fft-more-modes", "fft-padded")
RESULT_FILE = "result.json"

#: `--preset gpu`: the FNO paper's Navier–Stokes setting at 64² scaled to one H100/H200 in < 10 min for
#: one seed of fft / dense / monarch / diag (four runs side by side on the GPU). The dataset is the
#: ns-v1e-3 preset (1200 samples, 50 frames): 1000 training samples (100 of them validation), 200 test.
PRESETS = {
    "cpu": {},
    "gpu": {"n_train": 1000, "n_val": 100, "n_test": 200, "t_in": 10, "t_out": 10, "epochs": 40,
            "tune_epochs": 14, "step_fraction": 0.25, "gamma": 0.5, "batch_size": 20, "device": "cuda", "jobs": 4,
            "threads": 4, "seeds": (0,), "methods": ("fft", "dense", "monarch", "diag")},
}


@dataclass
class ProtocolConfig:
    """All values of a protocol run (saved as OUT/protocol.json)."""
    dataset: str = ""
    out: str = "runs/protocol"
    methods: tuple = METHODS[:5]
    padding: float = 0.125  # domain_padding of fft-padded (fraction of the grid added on every axis)
    n_train: int | None = None  # the training block incl. validation (default: the file's n_train attribute)
    n_val: int | None = None  # held out from the training block (default: 10 % of it)
    n_test: int | None = None  # default: the file's n_test attribute
    t_in: int = 10
    t_out: int | None = None
    epochs: int = 60
    tune_epochs: int | None = None  # default: epochs // 3
    step_fraction: float = 0.2  # StepLR step = round(step_fraction × epochs) (FNO: 100 of 500 epochs)
    gamma: float = 0.5
    batch_size: int = 20
    n_modes: tuple | None = None
    hidden_channels: int | None = None
    n_layers: int = 4
    monarch_sizes: tuple | None = None
    tune: bool = False
    lrs: tuple = (5e-4, 1e-3, 2e-3)
    transform_lrs: tuple = (1e-4, 1e-3, 1e-2)
    weight_decays: tuple = (0.0, 1e-4, 1e-3)
    monarch_axis: tuple | None = None  # ("1e-3@4,8", ...): transform lr @ block sizes; default transform_lrs
    lr: float = 1e-3  # untuned settings
    transform_lr: float | None = None
    weight_decay: float = 1e-4
    settings: str | None = None  # a tuning.json to take the chosen settings from
    seeds: tuple = (0, 1, 2)
    tune_seed: int = 0
    jobs: int = 2
    threads: int = 1
    device: str = "cpu"
    preset: str = "cpu"

    def resolved_split(self, n_file_train: int, n_file_test: int, n_total: int) -> tuple[int, int, int]:
        """(n_train incl. validation, n_val, n_test), defaults from the file; ConfigError if they do not fit."""
        n_train = self.n_train if self.n_train is not None else n_file_train
        n_val = self.n_val if self.n_val is not None else max(1, round(0.1 * n_train))
        n_test = self.n_test if self.n_test is not None else n_file_test
        if not 0 < n_val < n_train or n_test < 1 or n_train + n_test > n_total:
            raise ConfigError(f"split n_train={n_train} (incl. n_val={n_val}) + n_test={n_test} does not fit the "
                              f"{n_total} samples of {self.dataset}; need 0 < n_val < n_train and "
                              f"n_train + n_test <= {n_total}", hint="pass smaller --n-train / --n-val / --n-test")
        return n_train, n_val, n_test


# ----------------------------------------------------------------------------------------------
# data

def subsample_dataset(source, out, stride: int, overwrite: bool = False) -> Path:
    """Write a copy of a dataset file keeping every `stride`-th grid point on each spatial axis.

    This is how the FNO benchmark data were made (solved at 256², stored at 64²: stride 4). Same
    samples, same keys and attributes (the generator parameters get "subsample_stride" and "res"
    updated, and "source" names the file), marked complete like a generated file.
    Navier–Stokes `a` (N, S, S) and `u` (N, S, S, T) keep their last (time) axis; Darcy `coeff`, `sol`
    (N, S, S) — there node i of the coarse grid is node stride·i of the fine one, so the boundary nodes
    stay boundary nodes only when stride divides S − 1 (checked).
    """
    import h5py
    import numpy as np

    from common.files import atomic_h5

    source, out = Path(source), Path(out)
    if out.exists() and not overwrite:
        return out
    if stride < 1:
        raise ConfigError(f"stride must be >= 1, got {stride}")
    with h5py.File(source, "r") as src:
        attrs = dict(src.attrs)
        if not attrs.get("complete", False):
            raise FormatError(f"{source}: incomplete dataset file; finish generating it before subsampling")
        equation = attrs.get("equation", "")
        with atomic_h5(out) as dst:
            for key in src.keys():
                data = src[key][()]
                if key == "t":
                    dst.create_dataset(key, data=data)
                    continue
                size = data.shape[1]
                if equation == "darcy_2d" and (size - 1) % stride:
                    raise ConfigError(f"{source}: Darcy node grid {size} cannot be subsampled by {stride} keeping the "
                                      f"boundary nodes; stride must divide {size - 1}")
                index = (slice(None), slice(None, None, stride), slice(None, None, stride))
                sub = np.ascontiguousarray(data[index])
                dst.create_dataset(key, data=sub, chunks=(1, *sub.shape[1:]))
            params = json.loads(attrs.get("generator_params", "{}") or "{}")
            params.update(res=int(sub.shape[1]), subsample_stride=int(stride) * int(params.get("subsample_stride", 1)))
            for key, value in attrs.items():
                dst.attrs[key] = value
            dst.attrs["generator_params"] = json.dumps(params, sort_keys=True)
            dst.attrs["source"] = str(source)
    return out


def dataset_split_defaults(path) -> tuple[int, int, int, str]:
    """(file n_train, file n_test, total samples, equation) without loading the arrays."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such dataset file", hint="generate it with `python run.py data ...`")
    with h5py.File(path, "r") as f:
        attrs = dict(f.attrs)
        total = min(f[k].shape[0] for k in f.keys() if k not in ("t", "grid_x", "grid_y"))
        equation = str(attrs.get("equation", ""))
    n_train = int(attrs.get("n_train", total - max(1, total // 10)))
    n_test = int(attrs.get("n_test", total - n_train))
    return n_train, n_test, total, equation


# ----------------------------------------------------------------------------------------------
# the plan: which runs, with which settings

def engine_has_validation() -> bool:
    """True when the training engine's TrainConfig holds out a validation split itself (`n_val`)."""
    from .training import TrainConfig

    return "n_val" in {f.name for f in fields(TrainConfig)}


def split_options(n_train: int, n_val: int, n_test: int) -> dict:
    """TrainConfig split fields for (training block incl. validation, validation, test); see the module
    docstring for the fallback when the engine has no validation split."""
    if engine_has_validation():
        return {"n_train": n_train, "n_val": n_val, "n_test": n_test}
    return {"n_train": n_train - n_val, "n_test": n_val}


def step_size(epochs: int, fraction: float) -> int:
    return max(1, round(epochs * fraction))


def parse_monarch_axis(tokens) -> list[dict]:
    """["1e-3", "3e-3@4,8"] → [{"transform_lr": 1e-3}, {"transform_lr": 3e-3, "monarch_sizes": (4, 8)}]."""
    points = []
    for token in tokens:
        lr_text, _, sizes = str(token).partition("@")
        try:
            point = {"transform_lr": float(lr_text)}
            if sizes:
                point["monarch_sizes"] = tuple(int(v) for v in sizes.split(","))
        except ValueError:
            raise ConfigError(f"--monarch-axis entry {token!r} is not 'LR' or 'LR@B1,B2' (e.g. 1e-3@4,8)") from None
        points.append(point)
    return points


def tuning_grid(method: str, config: ProtocolConfig) -> list[dict]:
    """The grid points (TrainConfig overrides) of one transform; every transform's grid has the same size."""
    if method in FFT_METHODS:
        return [{"lr": lr, "weight_decay": wd} for lr, wd in itertools.product(config.lrs, config.weight_decays)]
    if method == "monarch" and config.monarch_axis:
        second = parse_monarch_axis(config.monarch_axis)
    else:
        second = [{"transform_lr": t} for t in config.transform_lrs]
    return [{"lr": lr, "weight_decay": config.weight_decay, **point} for lr, point in itertools.product(config.lrs, second)]


def check_equal_budget(config: ProtocolConfig) -> int:
    """The common grid size; ConfigError when the transforms would get different budgets."""
    sizes = {m: len(tuning_grid(m, config)) for m in TRANSFORMS_TUNED if m in config.methods}
    if len(set(sizes.values())) > 1:
        raise ConfigError(f"unequal tuning budgets {sizes}: every transform must get the same number of grid points",
                          hint="give --weight-decays and --transform-lrs (or --monarch-axis) the same length")
    return next(iter(sizes.values()), 0)


def base_options(config: ProtocolConfig, n_train: int, n_val: int, n_test: int) -> dict:
    """TrainConfig values shared by every run of the protocol."""
    values = {"dataset": str(config.dataset), "batch_size": config.batch_size, "gamma": config.gamma,
              "n_layers": config.n_layers, "t_in": config.t_in, "t_out": config.t_out, "device": config.device,
              "progress": False, **split_options(n_train, n_val, n_test)}
    for key in ("n_modes", "monarch_sizes"):
        if getattr(config, key) is not None:
            values[key] = tuple(getattr(config, key))
    if config.hidden_channels is not None:
        values["hidden_channels"] = config.hidden_channels
    return values


def method_options(method: str, padding: float = 0.125) -> dict:
    """TrainConfig values that make a method: its transform (fft-more-modes and fft-padded are FFT models;
    fft-padded pads the domain, the FNO paper's fix for non-periodic problems such as Darcy)."""
    if method == "fft-padded":
        return {"transform": "fft", "fno_kwargs": {"domain_padding": padding}}
    return {"transform": "fft" if method in FFT_METHODS else method}


@dataclass
class Run:
    """One training: its folder, TrainConfig values, and whether the test split is evaluated at the end."""
    run_dir: str
    train: dict
    method: str
    phase: str  # "tune" | "final"
    point: dict = field(default_factory=dict)
    seed: int = 0
    split: tuple = ()  # (n_train incl. validation, n_val, n_test)

    @property
    def result_path(self) -> Path:
        return Path(self.run_dir) / RESULT_FILE

    def done(self) -> bool:
        return self.result_path.is_file()


def tuning_runs(config: ProtocolConfig, split: tuple) -> list[Run]:
    base = base_options(config, *split)
    epochs = config.tune_epochs or max(1, config.epochs // 3)
    runs = []
    for method in (m for m in config.methods if m in TRANSFORMS_TUNED):
        for i, point in enumerate(tuning_grid(method, config)):
            values = {**base, **method_options(method, config.padding), **point, "seed": config.tune_seed, "epochs": epochs,
                      "step_size": step_size(epochs, config.step_fraction)}
            runs.append(Run(str(Path(config.out) / "tune" / method / f"p{i}"), values, method, "tune", point,
                            config.tune_seed, split))
    return runs


def final_runs(config: ProtocolConfig, split: tuple, chosen: dict, more_modes: tuple | None) -> list[Run]:
    base = base_options(config, *split)
    runs = []
    for method in config.methods:
        point = dict(chosen["fft" if method == "fft-more-modes" else method])
        extra = {"n_modes": tuple(more_modes)} if method == "fft-more-modes" else {}
        for seed in config.seeds:
            values = {**base, **method_options(method, config.padding), **point, **extra, "seed": seed, "epochs": config.epochs,
                      "step_size": step_size(config.epochs, config.step_fraction)}
            runs.append(Run(str(Path(config.out) / "final" / method / f"seed{seed}"), values, method, "final",
                            {**point, **extra}, seed, split))
    return runs


def untuned_settings(config: ProtocolConfig) -> dict:
    """Settings without tuning: from --settings (a tuning.json) or the single --lr/--transform-lr/--weight-decay."""
    if config.settings:
        path = Path(config.settings)
        if not path.is_file():
            raise FormatError(f"{path}: no such tuning.json", hint="give the tuning.json of a --tune run")
        chosen = json.loads(path.read_text())["chosen"]
        return {m: {k: (tuple(v) if isinstance(v, list) else v) for k, v in p.items()} for m, p in chosen.items()}
    transform_point = {"lr": config.lr, "weight_decay": config.weight_decay,
                       "transform_lr": config.transform_lr or config.lr}
    return {m: ({"lr": config.lr, "weight_decay": config.weight_decay} if m in FFT_METHODS else dict(transform_point))
            for m in TRANSFORMS_TUNED}


# ----------------------------------------------------------------------------------------------
# parameter-matched control

def parameter_count(train_values: dict) -> int:
    """Total trainable parameters of the model a TrainConfig builds (loads the data for its shapes)."""
    from .models import parameter_counts
    from .training import TrainConfig, prepare

    config = TrainConfig.from_dict({**train_values, "run_dir": "unused"})
    return int(parameter_counts(prepare(config)["predictor"].model)["total"])


def more_modes_for(base_values: dict, target_params: int, grid: tuple, default_modes: tuple,
                   count=parameter_count) -> tuple[tuple, int]:
    """(n_modes, parameters) of the FFT FNO closest in total parameters to `target_params`, among the
    n_modes that keep at least `default_modes` on every axis, more on at least one, and fit the grid
    (neuraloperator's centred count: at most the grid size per axis)."""
    axes = [range(d, s + 1, 2) for d, s in zip(default_modes, grid)]
    best = None
    for modes in itertools.product(*axes):
        if tuple(modes) == tuple(default_modes):
            continue
        params = count({**base_values, "transform": "fft", "n_modes": tuple(modes)})
        key = (abs(params - target_params), sum(modes))
        if best is None or key < best[0]:
            best = (key, tuple(modes), params)
    if best is None:
        raise ConfigError(f"no n_modes above {default_modes} fits the grid {grid}; drop fft-more-modes")
    return best[1], best[2]


# ----------------------------------------------------------------------------------------------
# one run (in a subprocess)

def execute(run: Run) -> dict:
    """Train (resuming a killed run), then write run_dir/result.json: the validation learning curve,
    timings and — for final runs only — the test errors of the selected checkpoint (best.pt)."""
    from .training import TrainConfig, train

    run_dir = Path(run.run_dir)
    values = {**run.train, "run_dir": str(run_dir), "resume": (run_dir / "last.pt").is_file()}
    values = {k: v for k, v in values.items() if k in {f.name for f in fields(TrainConfig)}}
    tic = time.perf_counter()
    train(TrainConfig.from_dict(values))
    wall = time.perf_counter() - tic
    curve = learning_curve(run_dir / "metrics.jsonl")
    result = {"method": run.method, "phase": run.phase, "point": _plain(run.point), "seed": run.seed,
              "split": {"n_train": run.split[0] - run.split[1], "n_val": run.split[1], "n_test": run.split[2]},
              "train_config": _plain(values), "curve": curve,
              "best_val_rel_l2": min(c["val_rel_l2"] for c in curve),
              "best_epoch": min(curve, key=lambda c: c["val_rel_l2"])["epoch"],
              "seconds_per_epoch": statistics.median(c["epoch_seconds"] for c in curve),
              "train_seconds": sum(c["epoch_seconds"] for c in curve), "wall_seconds_this_call": wall}
    config_json = json.loads((run_dir / "config.json").read_text())
    result["params"] = config_json.get("resolved", {}).get("parameters")
    result["n_modes"] = config_json.get("resolved", {}).get("n_modes")
    if run.phase == "final":
        result["test"] = evaluate_test(run_dir / "best.pt", run.split, values.get("device", "cpu"))
    write_json_atomic(run.result_path, result)
    return result


def learning_curve(metrics_path: Path) -> list[dict]:
    """[{epoch, val_rel_l2, epoch_seconds, seconds}] from a run's metrics.jsonl; `seconds` is the
    cumulative time of the epochs as the engine recorded them in that run (the shared engine times an
    epoch's training and its validation pass together)."""
    rows = [json.loads(line) for line in Path(metrics_path).read_text().splitlines() if line.strip()]
    if not rows:
        raise FormatError(f"{metrics_path}: no epochs recorded")
    key = "val_rel_l2" if "val_rel_l2" in rows[0] else "test_rel_l2"  # engine without n_val: its "test" is our validation
    curve, total = [], 0.0
    for row in rows:
        seconds = row.get("seconds", row.get("epoch_seconds"))
        total += seconds
        curve.append({"epoch": row["epoch"], "val_rel_l2": row[key], "epoch_seconds": seconds, "seconds": total})
    return curve


def test_split(config_values: dict, split: tuple):
    """The test Split (samples n_train .. n_train + n_test of the file, after the training block)."""
    from pde.data.readers import load_dataset, train_test_split

    from .problems import equation_of, to_tensors

    n_train, _, n_test = split
    data = load_dataset(config_values["dataset"])
    _, test = train_test_split(data, n_train, n_test)
    return to_tensors(test, equation_of(data), config_values.get("t_in", 10), config_values.get("t_out"))


def evaluate_test(checkpoint: Path, split: tuple, device: str = "cpu") -> dict:
    """Errors of the checkpoint on the test split: per sample (relative L2 over the predicted block)
    and per sample and predicted step; the selected epoch."""
    from .evaluation import load_checkpoint
    from .problems import relative_l2_per_sample, relative_l2_per_step
    from common.device import resolve_device

    from .training import predict

    setup, state, config = load_checkpoint(checkpoint, device=device)
    test = test_split(asdict(config), split)
    pred = predict(setup["predictor"], test.x, resolve_device(device), config.batch_size)
    per_sample = relative_l2_per_sample(pred, test.y)
    per_step = relative_l2_per_step(pred, test.y) if pred.shape[1] > 1 else per_sample[:, None]
    return {"checkpoint": str(checkpoint), "epoch": int(state["epoch"]), "rel_l2_mean": float(per_sample.mean()),
            "rel_l2_per_sample": [float(v) for v in per_sample],
            "rel_l2_per_step": [float(v) for v in per_step.mean(dim=0)],
            "rel_l2_per_sample_step": [[float(v) for v in row] for row in per_step]}


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# ----------------------------------------------------------------------------------------------
# running many runs

def run_all(runs: list[Run], jobs: int = 2, threads: int = 1, log=print) -> list[str]:
    """Run every run that has no result.json yet: up to `jobs` subprocesses at once (OMP_NUM_THREADS =
    `threads`), or in this process with jobs=0. Returns the run folders that failed (their log.txt
    says why)."""
    pending = [r for r in runs if not r.done()]
    skipped = len(runs) - len(pending)
    if skipped:
        log(f"{skipped} run(s) already finished: skipped")
    failed = []
    if jobs <= 0:
        for run in pending:
            execute(run)
        return failed
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    root = Path(__file__).resolve().parents[2]
    env["PYTHONPATH"] = os.pathsep.join([str(root)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    active: list[tuple[Run, subprocess.Popen, object, float]] = []
    queue = list(pending)
    while queue or active:
        while queue and len(active) < jobs:
            run = queue.pop(0)
            Path(run.run_dir).mkdir(parents=True, exist_ok=True)
            spec = Path(run.run_dir) / "run_spec.json"
            write_json_atomic(spec, _plain(asdict(run)))
            handle = open(Path(run.run_dir) / "log.txt", "a")
            process = subprocess.Popen([sys.executable, "-m", "pde.experiments.protocol", "--run-spec", str(spec)],
                                       stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=os.getcwd())
            active.append((run, process, handle, time.perf_counter()))
            log(f"started {run.run_dir}")
        time.sleep(0.2)
        for item in list(active):
            run, process, handle, started = item
            if process.poll() is None:
                continue
            handle.close()
            active.remove(item)
            ok = process.returncode == 0 and run.done()
            log(f"{'finished' if ok else 'FAILED'} {run.run_dir} in {time.perf_counter() - started:.0f} s")
            if not ok:
                failed.append(run.run_dir)
    return failed


def run_from_spec(path) -> None:
    """Subprocess entry: execute the Run stored in a run_spec.json."""
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    values = json.loads(Path(path).read_text())
    values["split"] = tuple(values["split"])
    execute(Run(**values))


# ----------------------------------------------------------------------------------------------
# the whole protocol

def select(results: dict[str, list[dict]]) -> dict:
    """{method: the grid point with the lowest best validation error}."""
    return {m: dict(min(rs, key=lambda r: r["best_val_rel_l2"])["point"]) for m, rs in results.items()}


def run_protocol(config: ProtocolConfig, command: str | None = None, log=print) -> Path:
    """Tune (optional), train the selected settings for every seed, write the report. Returns OUT."""
    from common.environment import describe_environment

    from .protocol_report import write_report

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    unknown = [m for m in config.methods if m not in METHODS]
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
    if "fft-more-modes" in config.methods and "fft" not in config.methods:
        raise ConfigError("fft-more-modes reuses FFT's settings: include fft in --methods")
    file_train, file_test, total, equation = dataset_split_defaults(config.dataset)
    split = config.resolved_split(file_train, file_test, total)
    write_json_atomic(out / "protocol.json", {"config": _plain(asdict(config)), "command": command,
                                              "split": {"n_train": split[0] - split[1], "n_val": split[1],
                                                        "n_test": split[2]},
                                              "engine_validation": engine_has_validation(),
                                              "environment": describe_environment(config.device)})
    failed = []
    if config.tune:
        budget = check_equal_budget(config)
        runs = tuning_runs(config, split)
        log(f"tuning: {len(runs)} runs ({budget} grid points per transform)")
        failed += run_all(runs, config.jobs, config.threads, log)
        results, diverged = {}, {}
        for run in runs:
            if run.done():
                results.setdefault(run.method, []).append(json.loads(run.result_path.read_text()))
            else:  # a grid point that failed (e.g. diverged at a large learning rate) is a result, not an error
                diverged.setdefault(run.method, []).append({"point": _plain(run.point), "log": str(Path(run.run_dir) / "log.txt")})
        failed = [f for f in failed if "/tune/" not in f.replace(os.sep, "/")]
        missing = [m for m in TRANSFORMS_TUNED if m in config.methods and m not in results]
        if missing:
            raise RuntimeError(f"every tuning run of {missing} failed; see the log.txt files under {out / 'tune'}")
        chosen = select(results)
        write_json_atomic(out / "tuning.json", {
            "grid": {m: _plain(tuning_grid(m, config)) for m in results}, "epochs": runs[0].train["epochs"],
            "score": "best validation relative L2 over the epochs (the error of best.pt)",
            "points": {m: [{"point": r["point"], "best_val_rel_l2": r["best_val_rel_l2"], "best_epoch": r["best_epoch"],
                            "seconds_per_epoch": r["seconds_per_epoch"]} for r in rs] for m, rs in results.items()},
            "failed": diverged, "chosen": _plain(chosen)})
    else:
        chosen = untuned_settings(config)
    more_modes = None
    if "fft-more-modes" in config.methods:
        more_modes = _more_modes(config, split, chosen, out, equation)
    runs = final_runs(config, split, chosen, more_modes)
    log(f"final: {len(runs)} runs ({len(config.seeds)} seed(s) per method)")
    failed += run_all(runs, config.jobs, config.threads, log)
    write_report([out], out / "report")
    if failed:
        raise RuntimeError(f"{len(failed)} run(s) failed: {failed}; see their log.txt, then rerun the same command "
                           "(finished runs are skipped)")
    return out


def _more_modes(config: ProtocolConfig, split: tuple, chosen: dict, out: Path, equation: str) -> tuple:
    """n_modes of the fft-more-modes control (cached in OUT/more_modes.json)."""
    from .problems import PROBLEM_DEFAULTS

    cache = out / "more_modes.json"
    if cache.is_file():
        return tuple(json.loads(cache.read_text())["n_modes"])
    base = {**base_options(config, *split), "epochs": 1}
    target = parameter_count({**base, **method_options("monarch"), **{k: v for k, v in chosen["monarch"].items()
                                                                      if k == "monarch_sizes"}})
    import h5py

    with h5py.File(config.dataset, "r") as f:
        key = "coeff" if "coeff" in f else "a"
        grid = tuple(f[key].shape[1:3])
    default = tuple(config.n_modes) if config.n_modes else PROBLEM_DEFAULTS[equation]["n_modes"]
    modes, params = more_modes_for(base, target, grid, default)
    write_json_atomic(cache, {"n_modes": list(modes), "params": params, "monarch_params": target,
                              "default_n_modes": list(default), "grid": list(grid),
                              "rule": "the n_modes >= default on every axis (more on one) whose FFT FNO has total "
                                      "parameters closest to the Monarch model's"})
    return modes


# ----------------------------------------------------------------------------------------------
# command line

def comma_floats(text):
    """"1e-3,3e-3" → (0.001, 0.003) (argparse names this type in its messages)."""
    return tuple(float(v) for v in text.split(","))


def comma_names(text):
    """"fft,monarch" → ("fft", "monarch")."""
    return tuple(text.split(","))


def semicolon_list(text):
    """"1e-3@8,4;1e-2" → ("1e-3@8,4", "1e-2")."""
    return tuple(text.split(";"))


def add_protocol_arguments(p: argparse.ArgumentParser) -> None:
    """Options of `run.py pde protocol` (defaults None: the preset, then ProtocolConfig, fill them)."""
    p.add_argument("dataset", help="dataset file (this project's HDF5)")
    p.add_argument("--out", help="protocol folder (default runs/protocol/<dataset stem>)")
    p.add_argument("--preset", choices=sorted(PRESETS), help="cpu (defaults below) or gpu (64², 1000/100/200, "
                   "10 → 10 frames, 40 epochs, one seed of fft/dense/monarch/diag on one GPU)")
    p.add_argument("--methods", type=comma_names, help=f"comma list of {', '.join(METHODS)}")
    p.add_argument("--n-train", type=int, help="training block incl. validation (default: the file's n_train)")
    p.add_argument("--n-val", type=int, help="validation samples held out of the training block (default 10 %%)")
    p.add_argument("--n-test", type=int, help="test samples after the training block (default: the file's n_test)")
    p.add_argument("--t-in", type=int, help="Navier–Stokes input frames (default 10)")
    p.add_argument("--t-out", type=int, help="Navier–Stokes predicted frames")
    p.add_argument("--epochs", type=int, help="epochs of each final run (default 60)")
    p.add_argument("--tune-epochs", type=int, help="epochs of each tuning run (default epochs // 3)")
    p.add_argument("--step-fraction", type=float, help="StepLR step as a fraction of the epochs (default 0.2)")
    p.add_argument("--gamma", type=float, help="StepLR factor (default 0.5)")
    p.add_argument("--batch-size", type=int, help="batch size of every run (default: the preset's)")
    p.add_argument("--n-modes", type=comma_ints, help="kept modes per axis (neuraloperator count; default 24,22)")
    p.add_argument("--hidden-channels", type=int, help="FNO width (default: the equation's, Navier–Stokes 20)")
    p.add_argument("--n-layers", type=int, help="FNO layers (default 4)")
    p.add_argument("--monarch-sizes", type=comma_ints, help="b1,b2 of every Monarch transform (default ~ sqrt n)")
    p.add_argument("--tune", action="store_true", default=None, help="tune every transform on the same-size grid")
    p.add_argument("--padding", type=float, help="domain padding of the fft-padded control (default 0.125)")
    p.add_argument("--lrs", type=comma_floats, help="learning-rate axis of every grid (default 5e-4,1e-3,2e-3)")
    p.add_argument("--transform-lrs", type=comma_floats, help="transform-lr axis of dense/diag/monarch (default 1e-4,1e-3,1e-2)")
    p.add_argument("--weight-decays", type=comma_floats, help="FFT's second axis (default 0,1e-4,1e-3)")
    p.add_argument("--monarch-axis", type=semicolon_list,
                   help="Monarch's second axis as 'LR[@B1,B2];...' (block sizes from its own budget)")
    p.add_argument("--lr", type=float, help="untuned learning rate (default 1e-3)")
    p.add_argument("--transform-lr", type=float, help="untuned transform learning rate (default: --lr)")
    p.add_argument("--weight-decay", type=float, help="weight decay of untuned runs and of the transform grids")
    p.add_argument("--settings", help="tuning.json whose chosen settings the runs use (instead of --tune)")
    p.add_argument("--seeds", type=int, nargs="+", help="seeds of the final runs (default 0 1 2)")
    p.add_argument("--tune-seed", type=int, help="seed of the tuning runs (default 0)")
    p.add_argument("--jobs", type=int, help="runs at once (subprocesses; 0 = in this process; default 2)")
    p.add_argument("--threads", type=int, help="OMP_NUM_THREADS of each run (default 1)")
    p.add_argument("--device", help="cpu | cuda | auto")
    p.add_argument("--merge", nargs="*", default=[], help="further protocol folders whose final runs join the report")
    p.add_argument("--report", help="report path stem (writes STEM.md/.json/.png; default OUT/report)")
    p.add_argument("--report-only", action="store_true", help="only (re)write the report of existing runs")
    p.add_argument("--notes", help="a text/markdown file appended to the report as its discussion")
    p.add_argument("--title", help="report title (default: the dataset's file name)")


def config_from_args(args) -> ProtocolConfig:
    """ProtocolConfig from parsed options: explicit options > the preset > ProtocolConfig defaults."""
    known = {f.name for f in fields(ProtocolConfig)}
    preset = args.preset or "cpu"
    values = {**PRESETS[preset], "preset": preset}
    values.update({k: v for k, v in vars(args).items() if k in known and v is not None and k != "preset"})
    if "seeds" in values:
        values["seeds"] = tuple(values["seeds"])
    values.setdefault("out", str(Path("runs/protocol") / Path(args.dataset).stem))
    return ProtocolConfig(**values)


def _protocol_command(args, prog: str = "python run.py"):
    from .protocol_report import write_report

    config = config_from_args(args)
    command = prog + " " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if not args.report_only:
        run_protocol(config, command=command)
    folders = [Path(config.out)] + [Path(m) for m in args.merge]
    stem = Path(args.report) if args.report else Path(config.out) / "report"
    notes = Path(args.notes).read_text() if args.notes else None
    report = write_report(folders, stem, command=command, notes=notes, title=args.title)
    print(Path(str(stem) + ".md").read_text())
    return report


def register_protocol(subparsers) -> None:
    """Add `protocol` to run.py's `pde` group (call from pde/experiments/cli.py's register)."""
    p = subparsers.add_parser("protocol", help="validation-selected, equally tuned, multi-seed comparison of "
                              "fft / dense / monarch / diag / fft-more-modes; one report")
    add_protocol_arguments(p)
    p.set_defaults(func=_protocol_command)


def main(argv=None) -> None:
    """`python -m pde.experiments.protocol DATASET [options]` (same options as `run.py pde protocol`);
    `--run-spec FILE` runs one training (the driver's subprocesses)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--run-spec"] and len(argv) == 2:
        run_from_spec(argv[1])
        return
    parser = argparse.ArgumentParser(prog="python -m pde.experiments.protocol")
    add_protocol_arguments(parser)
    _protocol_command(parser.parse_args(argv), prog="python -m pde.experiments.protocol")


if __name__ == "__main__":
    main()
