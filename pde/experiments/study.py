"""The PDE application of the study engine (`PdeStudyApp`, a `common.study.runner.StudyApplication`).

What it supplies, and nothing else (the design is the engine's):

- data: `problem["dataset"]` (a file), generated first when `problem["generate"]` names a preset
  ({"preset": "burgers-1024", "n": …, "res": …}: `pde.data.presets.configure` keywords) or copied from
  a finer file (`"subsample_of"`, `"stride"`); super-resolution
  evaluation files in `problem["eval_datasets"]` ({label: {"dataset", "generate" | "subsample_of",
  "stride"}}), the same trajectories at other grids (a stride copy of a finer file, as the FNO data are
  made: `pde.data.subsample`);
- a run: one `pde.experiments.training.train` with the TrainConfig built from problem ∪ cell ∪
  method.options ∪ the tuned params (lr, weight_decay, transform_lr) and the spec's schedule;
- test metrics per sample: "rel_l2" on the training grid, "rel_l2@<label>" on each evaluation grid
  (zero-shot: the learned transforms are resampled, `transfer.load_for_dataset`);
- the parameter-matched control: a method with option "match_parameters_of": M is the FFT FNO whose
  n_modes give the total parameter count closest to M's model (keeping at least the default modes).

Method options are TrainConfig fields (transform, n_modes, fno_kwargs, monarch_channels, …) plus
"match_parameters_of"; problem keys are TrainConfig fields plus "dataset", "generate", "eval_datasets".
"""
from __future__ import annotations

import itertools
from functools import lru_cache
from pathlib import Path

from common.errors import ConfigError

PROBLEM_ONLY = ("generate", "eval_datasets", "subsample_of", "stride")


def _train_values(spec, cell: dict, method, params: dict) -> dict:
    """The TrainConfig values of a run (everything except run folder, seed, epochs, schedule)."""
    from .training import TrainConfig

    values = {k: v for k, v in spec.problem.items() if k not in PROBLEM_ONLY}
    values.update({k: v for k, v in cell.items() if k != "tune_with"})
    options = {k: v for k, v in method.options.items() if k != "match_parameters_of"}
    values.update(options)
    values.update(params)
    values.setdefault("transform", "fft")
    for key in ("n_modes", "monarch_sizes"):
        if isinstance(values.get(key), list):
            values[key] = tuple(values[key])
    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"study {spec.name}, method {method.name}: unknown training option(s) {unknown}",
                          hint=f"problem, cell and method options must be TrainConfig fields: {sorted(known)}")
    if "match_parameters_of" in method.options:
        values["n_modes"] = matched_modes(spec, cell, method.options["match_parameters_of"], values)
    return values


@lru_cache(maxsize=32)
def _parameter_count(frozen: tuple) -> int:
    from .models import parameter_counts
    from .training import TrainConfig, prepare

    values = dict(frozen)
    config = TrainConfig.from_dict({**values, "run_dir": "unused"})
    return int(parameter_counts(prepare(config, with_test=False)["predictor"].model)["total"])


def parameter_count(values: dict) -> int:
    """Total trainable parameters of the model a TrainConfig's values build (cached per values)."""
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else (tuple(sorted(v.items())) if isinstance(v, dict)
                                                                      else v)) for k, v in values.items()))
    return _parameter_count(frozen)


def matched_modes(spec, cell: dict, target_method: str, values: dict) -> tuple:
    """n_modes of the FFT FNO (with `values`) closest in total parameters to `target_method`'s model,
    among the n_modes keeping at least the equation's default modes on every axis, more on one, and
    fitting the grid."""
    from .training import TrainConfig, prepare

    target = parameter_count(_train_values(spec, cell, spec.method(target_method), {}))
    setup = prepare(TrainConfig.from_dict({**values, "run_dir": "unused"}), with_test=False)
    default, grid = tuple(setup["n_modes"]), tuple(setup["grid"])
    best = None
    for modes in itertools.product(*[range(d, s + 1, 2) for d, s in zip(default, grid)]):
        if tuple(modes) == default:
            continue
        count = parameter_count({**values, "transform": "fft", "n_modes": tuple(modes)})
        key = (abs(count - target), sum(modes))
        if best is None or key < best[0]:
            best = (key, tuple(modes))
    if best is None:
        raise ConfigError(f"no n_modes above {default} fits the grid {grid}; drop the parameter-matched control")
    return best[1]


def _ensure(entry: dict, device: str = "cpu") -> Path:
    """The dataset file of a problem entry, generated (on `device`: auto, cpu, cuda…) or subsampled first
    when it is missing."""
    path = Path(entry["dataset"])
    if path.exists():
        return path
    if "generate" in entry:
        from pde.data.presets import configure, generate

        options = dict(entry["generate"])
        preset = configure(options.pop("preset"), **{k: v for k, v in options.items() if k != "seed"})
        from common.device import resolve_device

        return generate(preset, path, seed=options.get("seed", 0), device=resolve_device(device), progress=True)
    if "subsample_of" in entry:
        from pde.data.subsample import subsample_dataset

        return subsample_dataset(entry["subsample_of"], path, int(entry["stride"]))
    raise ConfigError(f"{path}: no such dataset file", hint="generate it with `python run.py data …`, or give the "
                      "study's problem a \"generate\" entry")


class PdeStudyApp:
    """`StudyApplication` for the FNO studies (see the module docstring)."""
    val_metric = "val_rel_l2"

    def prepare(self, spec, cell, device: str) -> None:
        """Generate (on `device`: the study's, e.g. the GPU of ns-gpu) or subsample every missing dataset."""
        problem = {**spec.problem, **{k: v for k, v in cell.items() if k != "tune_with"}}
        models = {m.options.get("model", problem.get("model", "fno")) for m in spec.methods}
        if "uno" in models and problem.get("eval_datasets"):  # transfer.resize_fno moves every conv to one grid
            raise ConfigError(f"study {spec.name}: zero-shot evaluation at other grids (eval_datasets) is for FNOs; "
                              "a UNO's inner layers run at other resolutions",
                              hint="drop eval_datasets, or evaluate UNO checkpoints with `pde eval --grid`")
        entries = [problem, *problem.get("eval_datasets", {}).values()]
        for entry in sorted(entries, key=lambda e: "subsample_of" in e):  # generated files before their copies
            _ensure(entry, device)

    def train(self, request, callback) -> None:
        from common.study.runner import schedule_settings

        from .training import TrainConfig, train

        values = _train_values(request.spec, request.cell, request.method, request.params)
        values.update(schedule_settings(request.spec, request.epochs))
        config = TrainConfig.from_dict({**values, "run_dir": str(request.run_dir), "seed": request.seed,
                                        "epochs": request.epochs, "device": request.device,
                                        "resume": request.resume, "progress": request.progress,
                                        "stop_after": request.stop_after})
        train(config, callback)

    def evaluate(self, spec, cell, method, params, run_dir, device) -> dict:
        from common.flops import forward_flops

        from .evaluation import evaluate, load_checkpoint
        from .superresolution import evaluate_at_grids

        report = evaluate(Path(run_dir) / "best.pt", out_dir=run_dir, device=device, plot=False)
        per_sample = {"rel_l2": report["rel_l2_per_sample"]}
        setup, _, _ = load_checkpoint(Path(run_dir) / "best.pt", device="cpu")
        info = {"parameters": report["params"], "epoch": report["epoch"], "n_modes": report["n_modes"],
                "grid": report["grid"], "train_seconds_per_epoch": report["train_seconds_per_epoch"],
                "flops": forward_flops(setup["predictor"].eval(), setup["test"].x[:1])}  # one test sample
        problem = {**spec.problem, **{k: v for k, v in cell.items() if k != "tune_with"}}
        extra = problem.get("eval_datasets", {})
        if extra:
            found = evaluate_at_grids(Path(run_dir) / "best.pt", [entry["dataset"] for entry in extra.values()],
                                      device=device)
            for label, grid_result in zip(extra, found.values()):
                per_sample[f"rel_l2@{label}"] = grid_result["per_sample"]
                residuals = [r for layer in grid_result["residuals"].values() for r in layer]
                info[f"projection_residual@{label}"] = max(residuals) if residuals else 0.0  # Monarch re-projection
        return {"per_sample": per_sample, "info": info}

    def validate(self, spec, cell, method, params) -> float:
        raise ConfigError(f"method {method.name}: every PDE method is trained (trained = false is for "
                          "classical reconstructions)")


__all__ = ["PdeStudyApp", "matched_modes", "parameter_count"]
