"""The MRI application of the study engine (`common.study`): `MriStudyApp` trains, validates and tests
reconstruction models on simulated data for `run.py mri study` (presets: `mri.recon.study_presets`).

    from common.study.runner import run_study
    results = run_study(PRESETS["mri-cpu"](), MriStudyApp(), "runs/mri/study-mri-cpu")

What the spec means here:
- `problem` (defaults: PROBLEM): the data — simulated (`sim_preset`, `sim_overrides`, `data_root`; one
  dataset per track, made when missing, `mri.recon.study_data`) or a given folder of scans (`data_dir`,
  `format`, `echo`: one track; its meta.json splits, or without them the first n_train_scans scans train
  and the last `n_test_scans` test, `mri compare`) — and what every learned run shares (`n_train_scans`
  — None: the whole train split —, `batch_size`, `loss`, `masks`, `mask_pool`, `scale`, `model_kwargs`,
  lr / transform_lr / weight_decay of a method that does not tune them, …).
- a cell: {"track": "exact" | "mismatch", "acceleration": 4.0, "n_train_scans": optional}; with
  simulated data the acceleration must be one they store masks for (validation and test use the
  stored masks; training draws random ones with masks = "random").
- a trained method: options {"model": registry name (`mri.recon.model_names`), "scale", "model_kwargs"}
  (its model_kwargs replace the problem's key by key); knobs lr, weight_decay and, for a learnable
  transform, transform_lr (the engine's optimiser rule: transforms get transform_lr, no decay).
- an untrained method (trained=False): options {"classical": an untrained registry name (cg-sense,
  l1-wavelet, bart-l1, bart-l2, zf), "max_iter", "wavelet"}; knob "lamda" (and for l1-wavelet the
  categorical "wavelet", a `Choice` of pywt families), tuned on the validation subjects by `validate`
  (minus their mean per-slice PSNR).
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
    "sim_preset": "study-cpu", "sim_overrides": {}, "data_root": "datasets", "data_dir": None, "format": "auto",
    "echo": 0, "n_test_scans": None, "transform_lr": None,
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
    if not method.trained:
        tunable = {"lamda", "wavelet"} if name == "l1-wavelet" else {"lamda"}
        if set(method.knobs) - tunable:
            raise ConfigError(f"method {method.name} ({name}) tunes {list(method.knobs)}; it can tune only "
                              f"{sorted(tunable)}")


class MriStudyApp:
    """`common.study.runner.StudyApplication` for MRI reconstruction (module docstring)."""
    val_metric = "val_loss"

    def __init__(self):
        self._checked = set()  # (problem, tracks) whose data this instance made and checked

    # ------------------------------------------------------------------ data
    @staticmethod
    def _cell(cell: dict) -> tuple[str, float]:
        if "acceleration" not in cell:
            raise ConfigError(f"MRI study cell {cell} has no acceleration",
                              hint='e.g. {"track": "exact", "acceleration": 4.0}')
        return cell.get("track", "exact"), float(cell["acceleration"])

    @staticmethod
    def _n_train(p: dict, cell: dict) -> int | None:
        return cell.get("n_train_scans", p["n_train_scans"])

    @staticmethod
    def _folder(p: dict, track: str) -> Path:
        from mri.recon.study_data import data_dir

        return Path(p["data_dir"]) if p["data_dir"] else data_dir(p, track)

    @staticmethod
    def _mask_pool_dir(p: dict) -> str:
        return str(Path(p["data_root"]) / "mask-pools")

    def _scans(self, spec, p: dict, track: str) -> dict:
        """{"train", "val", "test"} scan ids of a track: meta.json's splits (the test split cut to its
        last n_test_scans when given); a folder without splits: the first max-n_train scans train, the
        last n_test_scans (default: all the others) test, no validation."""
        from mri.recon.training import all_scan_ids, dataset_splits

        folder, n_test = self._folder(p, track), p["n_test_scans"]
        splits = dataset_splits(folder)
        if splits:
            return {**splits, "test": splits["test"][-n_test:] if n_test else splits["test"]}
        ids = all_scan_ids(folder, p["format"])
        counts = [self._n_train(p, c) for c in spec.cells]
        if None in counts:
            raise ConfigError(f"{folder} names no splits (no meta.json splits); every cell needs n_train_scans",
                              hint="set problem.n_train_scans (run.py mri compare: --n-train-scans)")
        n_max = max(counts)
        n_test = n_test or len(ids) - n_max
        if n_test < 1 or n_max + n_test > len(ids):
            raise ConfigError(f"{folder} holds {len(ids)} scans: not enough for {n_max} training + {n_test} test "
                              "scans", hint="lower --n-train-scans / --n-test-scans or use more scans")
        return {"train": ids[:n_max], "val": [], "test": ids[-n_test:]}

    def _shape(self, p: dict, track: str, scan: str) -> tuple:
        from mri.recon.training import open_slices

        return tuple(open_slices(self._folder(p, track), [scan], None, p["echo"], p["format"]).slice_shape(scan))

    def prepare(self, spec, cell: dict, device: str) -> None:
        """Make (simulated data) or check (a given folder) the data of every track of the spec, their
        splits and, for simulated data, the cell's stored mask; draw the cell's training-mask pools.
        device: unused (the simulation runs on the CPU, in worker processes)."""
        from mri.recon.study_data import check_splits, ensure_mask_pools, ensure_track, sim_config
        from mri.recon.training import detect_format

        p = problem_of(spec)
        for method in spec.methods:
            check_method(method)
        track, acc = self._cell(cell)
        tracks = sorted({c.get("track", "exact") for c in spec.cells})
        if acc <= 1:
            raise ConfigError(f"cell {spec.cell_label(cell)}: acceleration {acc:g}; expected an undersampling "
                              "factor > 1")
        if p["data_dir"] is None:
            stored = [float(a) for a in sim_config(p, track).accelerations]
            if acc not in stored:
                raise ConfigError(f"cell {spec.cell_label(cell)}: acceleration {acc:g} has no stored mask in the "
                                  f"data (stored: {stored})",
                                  hint="add it to the simulation's accelerations (sim_overrides)")
        elif tracks != ["exact"]:
            raise ConfigError(f"study {spec.name}: a given data folder ({p['data_dir']}) is one track, not {tracks}",
                              hint="leave the cells' track unset (or 'exact')")
        elif not Path(p["data_dir"]).is_dir():
            raise ConfigError(f"data folder {p['data_dir']}: no such folder",
                              hint="point problem.data_dir (--data) at a folder of .h5 scans")
        workers = max(1, spec.jobs * spec.threads)
        key = json.dumps([p, tracks, spec.cells], sort_keys=True, default=list)
        if key not in self._checked:
            if p["data_dir"] is None:
                splits = check_splits({t: ensure_track(p, t, workers) for t in tracks}, p["min_test_volumes"])
            else:
                if p["format"] == "auto":
                    detect_format(p["data_dir"])  # a one-line FormatError for a folder of other files
                splits = self._scans(spec, p, "exact")
            counts = [n for n in (self._n_train(p, c) for c in spec.cells) if n is not None]
            if counts and max(counts) > len(splits["train"]) or not splits["test"]:
                raise ConfigError(f"study {spec.name} trains on up to {max(counts, default=0)} scans and tests on "
                                  f"{len(splits['test'])}; the data has {len(splits['train'])} training scans",
                                  hint="lower n_train_scans or use more scans")
            self._checked.add(key)
        if p["mask_pool"]:
            shape = self._shape(p, track, self._scans(spec, p, track)["test"][0])
            ensure_mask_pools(self._mask_pool_dir(p), shape, [acc], [*spec.seeds, spec.tune_seed], p["mask_pool"],
                              workers, log=lambda text: None)

    # ------------------------------------------------------------------ training
    def train_config(self, request):
        """The TrainConfig of a RunRequest (the spec's schedule planned over request.epochs)."""
        from common.study.runner import schedule_settings
        from mri.recon.training import TrainConfig

        spec = request.spec
        p = problem_of(spec)
        track, acc = self._cell(request.cell)
        o, params = request.method.options, request.params
        n_train = self._n_train(p, request.cell) or len(self._scans(spec, p, track)["train"])
        lr = float(params.get("lr", p["lr"]))
        return TrainConfig(
            data_dir=str(self._folder(p, track)), format=p["format"], echo=p["echo"], model=o["model"],
            scale=o.get("scale", p["scale"]), model_kwargs={**p["model_kwargs"], **o.get("model_kwargs", {})},
            acceleration=acc, n_train_scans=int(n_train), masks=p["masks"], mask_pool=p["mask_pool"],
            mask_pool_dir=self._mask_pool_dir(p) if p["mask_pool"] else None,
            max_slices_per_scan=p["max_slices_per_scan"], epochs=int(request.epochs), batch_size=p["batch_size"],
            lr=lr, transform_lr=float(params.get("transform_lr", p["transform_lr"] or lr)),
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
        if "wavelet" in params:  # a tuned wavelet family (a categorical knob) over the option
            extra["wavelet"] = params["wavelet"]
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

        scans = sorted(scans)
        volumes, seconds = reconstruct_volumes(model, self._folder(p, track), acc, scans, p["echo"], device=device,
                                               batch_size=p["eval_batch_size"],
                                               max_slices_per_scan=p["max_slices_per_scan"], format=p["format"])
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
        return per_sample, {"samples": samples, "slices": n_slices,
                            "slices_per_s": n_slices / seconds if seconds > 0 else None}

    def evaluate(self, spec, cell, method, params, run_dir, device) -> dict:
        """Per-sample test metrics of a final run's best.pt (or of an untrained method at `params`)."""
        from common.device import resolve_device
        from monarch_core import count_parameters
        from mri.recon.evaluation import slice_flops
        from mri.recon.models import transform_parameter_count
        from mri.recon.training import load_model

        p = problem_of(spec)
        track, acc = self._cell(cell)
        test = self._scans(spec, p, track)["test"]
        if run_dir is None:
            model = self._untrained_model(p, method, params, self._shape(p, track, test[0]))
            dev = resolve_device("cpu")  # the classical reconstructions run in numpy
        else:
            dev = resolve_device(device)
            model, _ = load_model(run_dir, "best", dev)
        per_sample, info = self._scores(model, p, track, acc, test, dev, p["sample"])
        flops = slice_flops(model, self._folder(p, track), acc, sorted(test)[0], p["echo"], p["format"])
        if flops is not None and p["sample"] == "volume":  # the report's column is FLOPs per sample
            flops = round(flops * info["slices"] / len(test))
        info.update(parameters={"total": count_parameters(model), "transform": transform_parameter_count(model)},
                    flops=flops,
                    test_scans=sorted(test), track=track, acceleration=acc)
        return {"per_sample": per_sample, "info": info}

    def validate(self, spec, cell, method, params) -> float:
        """Minus the mean per-slice PSNR of an untrained method at `params` on the validation subjects
        (lower is better, as the engine minimises)."""
        p = problem_of(spec)
        track, acc = self._cell(cell)
        val = self._scans(spec, p, track)["val"]
        if not val:
            raise ConfigError(f"study {spec.name}: {method.name} tunes {list(method.knobs)} on validation scans, "
                              "and the data have none", hint="use data whose meta.json names a val split")
        model = self._untrained_model(p, method, params, self._shape(p, track, val[0]))
        per_sample, _ = self._scores(model, p, track, acc, val, "cpu")
        value = -sum(per_sample["psnr"]) / len(per_sample["psnr"])
        if not math.isfinite(value):
            raise ConfigError(f"method {method.name} at {params} gives a non-finite validation PSNR")
        return value


__all__ = ["MriStudyApp", "PROBLEM", "METRICS", "problem_of", "check_method"]
