"""Zero-shot super-resolution: a model trained at one grid evaluated at others without retraining
(`evaluate_at_grids`; the PDE study's `rel_l2@<grid>` metrics, `pde.experiments.study`).

The FNO paper trains at 64² and evaluates at 256². A learnable-transform FNO is moved to each evaluation
grid with `transfer.load_for_dataset` (band-limited resampling of its learned transforms; Monarch factors
re-projected, residual recorded). The evaluation data are the same trajectories stored at every
resolution (generated at the finest one and subsampled, as the FNO data are made), so errors at
different grids compare like with like.
"""
from __future__ import annotations

from common.device import resolve_device

from .problems import relative_l2_per_sample
from .training import predict
from .transfer import load_for_dataset


def evaluate_at_grids(checkpoint, datasets: list, device: str = "cpu", batch_size: int = 10) -> dict:
    """Per-test-sample relative L2 of one checkpoint on each dataset (at that dataset's grid).

    Returns {grid_label: {"per_sample": [...], "residuals": {layer: [...]}, "last_frame": (S, S) of test
    sample 0 (prediction), "true_last_frame": (S, S)}} with grid_label like "64x64".
    """
    found = {}
    for dataset in datasets:
        setup, _, _, residuals = load_for_dataset(checkpoint, dataset, grid=None, device=device,
                                                       allow_resize=True)
        test = setup["test"]
        pred = predict(setup["predictor"], test.x, resolve_device(device), batch_size)
        label = "x".join(str(s) for s in setup["grid"])
        found[label] = {"per_sample": relative_l2_per_sample(pred, test.y).tolist(), "residuals": residuals,
                        "last_frame": pred[0, -1].numpy(), "true_last_frame": test.y[0, -1].numpy()}
    return found


__all__ = ["evaluate_at_grids"]
