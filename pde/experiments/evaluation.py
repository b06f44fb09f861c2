"""Evaluation of a trained checkpoint on the TEST split: `evaluate(checkpoint, dataset, out_dir) -> dict`.

This is the one place the test split is read; training selects `best.pt` on validation only.

Reports the mean relative L2 over the predicted block (per test sample) with its standard error, the
error per predicted step, parameter counts (transforms separately), training seconds per epoch (median
over the run's metrics.jsonl) and inference throughput; writes eval.json, eval.md, error_vs_step.png and
fields.png into out_dir.
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from common.checkpoints import load_checkpoint as load_safe_checkpoint
from common.device import resolve_device
from common.errors import ConfigError
from common.files import make_folder, write_json_atomic, write_text_atomic
from common.stats import format_mean_se, mean_se
from common.training import read_metrics

from . import plots
from .models import parameter_counts
from .problems import relative_l2_per_sample, relative_l2_per_step
from .training import TrainConfig, predict, prepare
from .transfer import load_for_dataset


def load_checkpoint(checkpoint, dataset=None, device="auto", trust: bool = False, grid=None):
    """Rebuild the run's predictor from a checkpoint, optionally on another dataset file; on another grid
    only when `grid` names it (equal to that dataset's grid: a guard against evaluating at a resolution
    by accident).

    A checkpoint that records its grids (config "resolved": training input "grid" and "trained_grids",
    see training.checkpoint_config) is rebuilt with every learnable conv at its trained grid and runs on
    the dataset's grid as it is, through the transforms derived from the learned ones (the drop-in
    behaviour of TransformSpectralConv: band-limited resampling of each learned row, exact there, with
    no re-projection); the training data is not read. An older checkpoint goes through
    `transfer.load_for_dataset` (rebuilt on the training data's grid, then `resize_fno`).
    Returns (setup dict of `training.prepare` plus "projection_residuals" and "trained_grids",
    checkpoint state, TrainConfig). The checkpoint is read with weights_only=True (`trust=True`: the
    full unpickler, for trusted files only)."""
    state = load_safe_checkpoint(checkpoint, map_location="cpu", trust=trust)
    saved = state.get("config") if isinstance(state, dict) and "model" in state else None
    recorded = saved.get("resolved") if isinstance(saved, dict) else None
    if not isinstance(recorded, dict) or "trained_grids" not in recorded or "grid" not in recorded:
        setup, state, config, residuals = load_for_dataset(checkpoint, dataset, grid=grid, device=device,
                                                           trust=trust)
        setup.update(projection_residuals=residuals, trained_grids=None)
        return setup, state, config
    config = TrainConfig.from_dict({**saved, "dataset": str(dataset or saved["dataset"])})
    setup = prepare(config, with_test=True, trained_grids=recorded["trained_grids"])
    data_grid, trained_grid = tuple(setup["grid"]), tuple(recorded["grid"])
    if grid is not None and tuple(grid) != data_grid:
        raise ConfigError(f"--grid {','.join(map(str, grid))} differs from the grid of {config.dataset} "
                          f"({','.join(map(str, data_grid))}); give the dataset's grid or a dataset at that grid")
    if grid is None and data_grid != trained_grid:
        raise ConfigError(f"{checkpoint} was trained at grid {trained_grid} but {config.dataset} is at "
                          f"{data_grid}", hint=f"pass --grid {','.join(map(str, data_grid))} to evaluate "
                          "the model at that resolution (zero-shot), or use data at the training grid")
    setup["predictor"].load_state_dict(state["model"])
    setup["predictor"].to(resolve_device(device))
    setup.update(projection_residuals={}, trained_grids=recorded["trained_grids"])
    return setup, state, config


def evaluate(checkpoint, dataset=None, out_dir=None, device: str = "auto", batch_size: int = 20,
             plot: bool = True, trust: bool = False, grid=None) -> dict:
    """Evaluate `checkpoint` on the test split of `dataset` (default: the dataset it was trained on).

    `grid` (tuple): evaluate a model trained at another resolution on this dataset's grid (zero-shot);
    it must equal the dataset's grid, and is required when that differs from the training grid.
    Returns the report dict (also written to out_dir/eval.json, default: the checkpoint's folder).
    """
    setup, state, config = load_checkpoint(checkpoint, dataset, device, trust, grid)
    device = resolve_device(device)
    predictor, test = setup["predictor"], setup["test"]
    out_dir = Path(out_dir) if out_dir is not None else Path(checkpoint).parent
    make_folder(out_dir)

    predict(predictor, test.x[:batch_size], device, batch_size)  # warm-up before timing
    _sync(device)
    tic = time.perf_counter()
    pred = predict(predictor, test.x, device, batch_size, config.amp)
    _sync(device)
    seconds = time.perf_counter() - tic
    per_sample = relative_l2_per_sample(pred, test.y)
    per_step = relative_l2_per_step(pred, test.y).mean(dim=0)
    n = per_sample.numel()
    rel_mean, rel_se = mean_se(per_sample.tolist())
    epochs = [m["seconds"] for m in read_metrics(Path(checkpoint).parent)]
    report = {
        "checkpoint": str(checkpoint), "dataset": str(config.dataset), "equation": setup["equation"],
        "transform": config.transform, "model": config.model, "monarch_channels": config.monarch_channels,
        "epoch": int(state["epoch"]),
        "epochs_trained": int(state["epoch"]) + 1, "n_test": n,
        "rel_l2_mean": rel_mean, "rel_l2_se": rel_se, "rel_l2_per_sample": per_sample.tolist(),
        "rel_l2_per_step": [float(v) for v in per_step],
        "params": parameter_counts(predictor.model),
        "train_seconds_per_epoch": statistics.median(epochs) if epochs else None,  # robust to a busy machine
        "inference_samples_per_second": n / seconds, "device": str(device),
        "n_modes": list(setup["n_modes"]), "hidden_channels": setup["hidden_channels"], "grid": list(setup["grid"]),
        "projection_residuals": setup["projection_residuals"], "trained_grids": setup["trained_grids"],
    }
    write_json_atomic(out_dir / "eval.json", report)
    write_text_atomic(out_dir / "eval.md", markdown(report))
    if plot:
        label = f"{config.transform}{' + Monarch channels' if config.monarch_channels else ''}"
        plots.error_vs_step({label: report["rel_l2_per_step"]}, out_dir / "error_vs_step.png",
                            title=Path(config.dataset).stem)
        plots.predicted_vs_true(pred.numpy(), test.y.numpy(), out_dir / "fields.png",
                                title=f"{label}: last predicted step")
    return report


def markdown(report: dict) -> str:
    p = report["params"]
    steps = ", ".join(f"{v:.4f}" for v in report["rel_l2_per_step"])
    epoch_time = report["train_seconds_per_epoch"]
    return "\n".join([
        f"# Evaluation: {report['transform']} {report.get('model', 'fno').upper()} on "
        f"{Path(report['dataset']).name}", "",
        f"- checkpoint: `{report['checkpoint']}` (epoch {report['epoch']})",
        f"- relative L2 over the predicted block: **{format_mean_se(report['rel_l2_mean'], report['rel_l2_se'])}** "
        f"(mean ± s.e., {report['n_test']} test samples)",
        f"- per predicted step: {steps}",
        f"- parameters: {p['total']:,} total, {p['transform']:,} in transforms, {p['spectral_weights']:,} spectral "
        f"weights, {p['monarch_channels']:,} in Monarch channel layers",
        f"- training time per epoch: {epoch_time:.2f} s" if epoch_time else "- training time per epoch: n/a",
        f"- inference: {report['inference_samples_per_second']:.1f} samples/s on {report['device']}", "",
    ])


def _sync(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
