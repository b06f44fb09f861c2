"""The MRI application of the study engine (`common.study`): `MriStudyApp` trains, validates and tests
reconstruction models on simulated data for `run.py mri study` (presets: `mri.recon.study_presets`).

    from common.study.runner import run_study
    results = run_study(PRESETS["mri-cpu"](), MriStudyApp(), "runs/mri/study-mri-cpu")

What the spec means here:
- `problem` (defaults: PROBLEM): the data (`sim_preset`, `sim_overrides`, `data_root`; one dataset per
  track, `mri.recon.study_data`) and what every learned run shares (`n_train_scans` — None: the whole
  train split —, `batch_size`, `loss`, `masks`, `mask_pool`, `scale`, `model_kwargs`, …).
- a cell: {"track": "exact" | "mismatch", "acceleration": 4.0}; the acceleration must be one the data
  stores masks for (validation and test use the stored masks; training draws random ones).
- a trained method: options {"model": registry name (`mri.recon.model_names`), "scale", "model_kwargs"}
  (its model_kwargs replace the problem's key by key); knobs lr, weight_decay and, for a learnable
  transform, transform_lr (the engine's optimiser rule: transforms get transform_lr, no decay).
- an untrained method (trained=False): options {"classical": an untrained registry name (cg-sense,
  l1-wavelet, bart-l1, bart-l2, zf), "max_iter", "wavelet"}; knob "lamda", tuned on the validation
  subjects by `validate` (minus their mean per-slice PSNR).
- per test sample (a slice of a test subject, in the order of the sorted test ids): "psnr", "ssim"
  (magnitude, fastMRI convention: the volume's max |target| as data range) and "nmse"
  (`mri.recon.metrics.slice_metrics`). With problem["sample"] = "volume" a sample is a whole test
  subject instead (`metrics.volume_metrics`, fastMRI convention; nmse = nrmse²): fewer samples, but
  no slices of one subject counted as independent by the bootstrap. The validation metric of the
  training runs is the validation loss ("val_loss", `training.ReconTask`).
"""
from __future__ import annotations

import json
import math
from pathlib import Path

from common.errors import ConfigError

#: the problem keys and their defaults (a spec's problem may set any of them, nothing else); lr and
#: weight_decay are those of a trained method that does not tune them (transform_lr: its lr)
PROBLEM = {
    "sim_preset": "study-cpu", "sim_overrides": {}, "data_root": "datasets",
    "n_train_scans": None, "max_slices_per_scan": None, "batch_size": 4, "loss": "l1", "masks": "random",
    "mask_pool": None, "scale": "small", "model_kwargs": {}, "lr": 1e-3, "weight_decay": 0.0, "amp": False,
    "num_workers": 0,
    "classical_iters": 30, "min_test_volumes": 1, "eval_batch_size": 8, "sample": "slice",
}
SAMPLES = ("slice", "volume")
TRAINED_OPTIONS = ("model", "scale", "model_kwargs")
UNTRAINED_OPTIONS = ("classical", "max_iter", "wavelet", "random_shifts")
METRICS = ("psnr", "ssim", "nmse")


def problem_of(spec) -> dict:
    """The spec's problem over the defaults; ConfigError for a key this application does not know."""
    unknown = sorted(set(spec.problem) - set(PROBLEM))
    if unknown:
        raise ConfigError(f"study {spec.name}: unknown MRI problem key(s) {unknown}; known: {sorted(PROBLEM)}")
    p = {**PROBLEM, **spec.problem}
    if p["sample"] not in SAMPLES:
        raise ConfigError(f"study {spec.name}: problem.sample = {p['sample']!r}; expected one of {SAMPLES}")
    return p


def check_method(method) -> None:
    """ConfigError for method options this application cannot build (before anything runs)."""
    from mri.recon.model_names import is_trainable, known_models

    o = method.options
    allowed = TRAINED_OPTIONS if method.trained else UNTRAINED_OPTIONS
    unknown = sorted(set(o) - set(allowed))
    key = "model" if method.trained else "classical"
    if unknown or key not in o:
        kind = "trained" if method.trained else "untrained"
        raise ConfigError(f"method {method.name}: options {sorted(o)}; a {kind} MRI method needs {key!r} and may "
                          f"set {list(allowed)}")
    name = o[key]
    if name not in known_models() or is_trainable(name) != method.trained:
        kind = "trainable" if method.trained else "untrained"
        raise ConfigError(f"method {method.name}: {name!r} is not a {kind} model of the registry",
                          hint=f"models: {', '.join(known_models())}")
    if not method.trained and set(method.knobs) - {"lamda"}:
        raise ConfigError(f"method {method.name} (untrained) tunes {list(method.knobs)}; it can tune only 'lamda'")


class MriStudyApp:
    """`common.study.runner.StudyApplication` for MRI reconstruction (module docstring)."""
    val_metric = "val_loss"

    def __init__(self):
        self._checked = set()  # (problem, tracks) whose data this instance made and checked

    # ------------------------------------------------------------------ data
    def prepare(self, spec, cell: dict) -> None:
        """Make (or check) the datasets of every track of the spec, their splits, the cell's stored mask
        and the training-mask pools of the cell's acceleration."""
        from mri.recon.study_data import check_splits, ensure_mask_pools, ensure_track, sim_config

        p = problem_of(spec)
        for method in spec.methods:
            check_method(method)
        track, acc = self._cell(cell)
        stored = [float(a) for a in sim_config(p, track).accelerations]
        if acc not in stored:
            raise ConfigError(f"cell {spec.cell_label(cell)}: acceleration {acc:g} has no stored mask in the data "
                              f"(stored: {stored})", hint="add it to the simulation's accelerations (sim_overrides)")
        tracks = sorted({c.get("track", "exact") for c in spec.cells})
        workers = max(1, spec.jobs * spec.threads)
        key = json.dumps([p, tracks], sort_keys=True, default=list)
        if key not in self._checked:
            folders = {t: ensure_track(p, t, workers) for t in tracks}
            splits = check_splits(folders, p["min_test_volumes"])
            n = p["n_train_scans"]
            if n is not None and n > len(splits["train"]):
                raise ConfigError(f"study {spec.name} trains on {n} subjects; the data has {len(splits['train'])}",
                                  hint="lower problem.n_train_scans or simulate more subjects")
            self._checked.add(key)
        if p["mask_pool"]:
            shape = sim_config(p, track).shape
            ensure_mask_pools(self._mask_pool_dir(p), shape, [acc], [*spec.seeds, spec.tune_seed], p["mask_pool"],
                              workers, log=lambda text: None)

    @staticmethod
    def _cell(cell: dict) -> tuple[str, float]:
        if "acceleration" not in cell:
            raise ConfigError(f"MRI study cell {cell} has no acceleration",
                              hint='e.g. {"track": "exact", "acceleration": 4.0}')
        return cell.get("track", "exact"), float(cell["acceleration"])

    @staticmethod
    def _mask_pool_dir(p: dict) -> str:
        return str(Path(p["data_root"]) / "mask-pools")

    def _splits(self, p: dict, track: str) -> dict:
        from mri.recon.study_data import data_dir
        from mri.recon.training import dataset_splits

        return dataset_splits(data_dir(p, track))

    # ------------------------------------------------------------------ training
    def train_config(self, request):
        """The TrainConfig of a RunRequest (the spec's schedule planned over request.epochs)."""
        from common.study.runner import schedule_settings
        from mri.recon.study_data import data_dir
        from mri.recon.training import TrainConfig

        spec = request.spec
        p = problem_of(spec)
        track, acc = self._cell(request.cell)
        o, params = request.method.options, request.params
        n_train = p["n_train_scans"] or len(self._splits(p, track)["train"])
        lr = float(params.get("lr", p["lr"]))
        return TrainConfig(
            data_dir=str(data_dir(p, track)), model=o["model"], scale=o.get("scale", p["scale"]),
            model_kwargs={**p["model_kwargs"], **o.get("model_kwargs", {})}, acceleration=acc,
            n_train_scans=int(n_train), masks=p["masks"], mask_pool=p["mask_pool"],
            mask_pool_dir=self._mask_pool_dir(p) if p["mask_pool"] else None,
            max_slices_per_scan=p["max_slices_per_scan"], epochs=int(request.epochs), batch_size=p["batch_size"],
            lr=lr, transform_lr=float(params.get("transform_lr", lr)),
            weight_decay=float(params.get("weight_decay", p["weight_decay"])), loss=p["loss"], amp=p["amp"],
            seed=int(request.seed), device=request.device, num_workers=p["num_workers"],
            out_dir=str(Path(request.run_dir).parent), run_name=Path(request.run_dir).name,
            resume=request.resume, overwrite=not request.resume,  # no last.pt: whatever is there is a stale start
            progress=request.progress, stop_after=request.stop_after, **schedule_settings(spec, request.epochs))

    def train(self, request, callback) -> None:
        from mri.recon.training import train

        train(self.train_config(request), callback)

    # ------------------------------------------------------------------ evaluation
    def _untrained_model(self, p: dict, method, params: dict, shape):
        from mri.recon.models import build_model

        o = method.options
        extra = {k: o[k] for k in ("wavelet", "random_shifts") if k in o}
        if o["classical"] == "zf":
            return build_model("zf", shape)
        return build_model(o["classical"], shape, lamda=params.get("lamda"),
                           max_iter=o.get("max_iter", p["classical_iters"]), **extra)

    def _scores(self, model, p: dict, track: str, acc: float, scans: list, device,
                sample: str = "slice") -> tuple[dict, dict]:
        """Per-sample metrics of `model` on `scans` (sorted; a sample is a slice or a volume), and the
        ids of the samples ("SCAN/slice" or "SCAN")."""
        from mri.recon.evaluation import reconstruct_volumes
        from mri.recon.metrics import slice_metrics, volume_metrics
        from mri.recon.study_data import data_dir

        scans = sorted(scans)
        volumes, seconds = reconstruct_volumes(model, data_dir(p, track), acc, scans, device=device,
                                               batch_size=p["eval_batch_size"],
                                               max_slices_per_scan=p["max_slices_per_scan"])
        per_sample = {m: [] for m in METRICS}
        samples = []
        for scan in scans:
            target, pred = volumes[scan]
            if sample == "volume":
                values = volume_metrics(target, pred, "fastmri")
                values = {"psnr": [values["psnr"]], "ssim": [values["ssim"]], "nmse": [values["nrmse"] ** 2]}
                samples.append(scan)
            else:
                values = slice_metrics(target, pred)
                samples += [f"{scan}/{i}" for i in range(len(target))]
            for metric in METRICS:
                per_sample[metric] += values[metric]
        n_slices = sum(len(t) for t, _ in volumes.values())
        return per_sample, {"samples": samples, "slices_per_s": n_slices / seconds if seconds > 0 else None}

    def evaluate(self, spec, cell, method, params, run_dir, device) -> dict:
        """Per-slice test metrics of a final run's best.pt (or of an untrained method at `params`)."""
        from common.device import resolve_device
        from monarch_core import count_parameters
        from mri.recon.models import transform_parameter_count
        from mri.recon.training import load_model, open_slices

        p = problem_of(spec)
        track, acc = self._cell(cell)
        test = self._splits(p, track)["test"]
        if run_dir is None:
            from mri.recon.study_data import data_dir

            reader = open_slices(data_dir(p, track), test[:1], None)
            model, dev = self._untrained_model(p, method, params, reader.slice_shape(test[0])), resolve_device("cpu")
        else:
            dev = resolve_device(device)
            model, _ = load_model(run_dir, "best", dev)
        per_sample, info = self._scores(model, p, track, acc, test, dev, p["sample"])
        info.update(parameters={"total": count_parameters(model), "transform": transform_parameter_count(model)},
                    test_scans=sorted(test), track=track, acceleration=acc)
        return {"per_sample": per_sample, "info": info}

    def validate(self, spec, cell, method, params) -> float:
        """Minus the mean per-slice PSNR of an untrained method at `params` on the validation subjects
        (lower is better, as the engine minimises)."""
        from mri.recon.study_data import data_dir
        from mri.recon.training import open_slices

        p = problem_of(spec)
        track, acc = self._cell(cell)
        val = self._splits(p, track)["val"]
        reader = open_slices(data_dir(p, track), val[:1], None)
        model = self._untrained_model(p, method, params, reader.slice_shape(val[0]))
        per_sample, _ = self._scores(model, p, track, acc, val, "cpu")
        value = -sum(per_sample["psnr"]) / len(per_sample["psnr"])
        if not math.isfinite(value):
            raise ConfigError(f"method {method.name} at {params} gives a non-finite validation PSNR")
        return value


__all__ = ["MriStudyApp", "PROBLEM", "METRICS", "problem_of", "check_method"]
