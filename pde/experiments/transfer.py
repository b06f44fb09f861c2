"""A trained checkpoint evaluated on data at another resolution ("zero-shot super-resolution").

An FFT FNO runs on any grid as it is. A learnable-transform FNO is rebuilt at the grid it was trained on,
its weights loaded, and its transforms moved to the data's grid with `resize_fno` (band-limited
resampling of each learned row; Monarch factors re-projected). Input normalisation (Darcy only, per grid
point) is refitted on the same training samples at the new grid, as the FNO paper does when it
evaluates a model on finer data.
"""
from __future__ import annotations

from common.checkpoints import load_checkpoint as load_safe_checkpoint
from common.device import resolve_device
from common.errors import CheckpointError, ConfigError

from .resize import resize_fno
from .training import TrainConfig, prepare


def parse_grid(text: str | None) -> tuple[int, ...] | None:
    """"64,64" or "64" → (64, 64) / (64,); None stays None."""
    if text is None or text == "":
        return None
    try:
        grid = tuple(int(v) for v in str(text).split(","))
    except ValueError:
        raise ConfigError(f"--grid {text!r} is not a comma-separated list of integers, e.g. 64,64") from None
    if any(v < 2 for v in grid):
        raise ConfigError(f"--grid {text!r}: every size must be ≥ 2")
    return grid


def load_for_dataset(checkpoint, dataset=None, grid=None, device="auto", trust: bool = False, with_test=True,
                     allow_resize: bool = False):
    """Rebuild a run's predictor for `dataset` (default: the one it was trained on), moved to its grid.

    Args:
        checkpoint: a run's best.pt / last.pt (read with weights_only=True unless trust=True).
        dataset: data file to evaluate on; its split sizes and options are the run's.
        grid: the grid the user asks for (tuple). When the dataset's grid differs from the training grid,
            `grid` must be given and equal to the dataset's grid (a guard against evaluating at a
            resolution by accident); None means "the dataset's own grid", which must then equal the
            training grid unless `allow_resize` (a study that moves models to every grid on purpose).
    Returns:
        (setup, state, config, residuals): `training.prepare`'s dict for the dataset with the trained
        (and resized) predictor on `device`; the checkpoint state; its TrainConfig (dataset replaced);
        {layer: [projection residual per transform]} ({} when nothing was resized).
    """
    state = load_safe_checkpoint(checkpoint, map_location="cpu", trust=trust)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{checkpoint}: not a checkpoint written by pde.experiments.training "
                              f"(keys {sorted(state) if isinstance(state, dict) else type(state).__name__})")
    trained_config = TrainConfig.from_dict(dict(state["config"]))
    config = TrainConfig.from_dict({**state["config"], "dataset": str(dataset or trained_config.dataset)})
    setup = prepare(config, with_test=with_test)
    data_grid = tuple(setup["grid"])
    if grid is not None and tuple(grid) != data_grid:
        raise ConfigError(f"--grid {','.join(map(str, grid))} differs from the grid of {config.dataset} "
                          f"({','.join(map(str, data_grid))}); give the dataset's grid or a dataset at that grid")
    # the training grid is that of the training data (the checkpoint's model was built for it)
    trained = setup if config.dataset == trained_config.dataset else prepare(trained_config, with_test=False)
    trained_grid = tuple(trained["grid"])
    residuals = {}
    if data_grid == trained_grid:
        setup["predictor"].load_state_dict(state["model"])
    else:
        if grid is None and not allow_resize:
            raise ConfigError(f"{checkpoint} was trained at grid {trained_grid} but {config.dataset} is at "
                              f"{data_grid}", hint=f"pass --grid {','.join(map(str, data_grid))} to evaluate "
                              "the model at that resolution (zero-shot), or use data at the training grid")
        trained["predictor"].load_state_dict(state["model"])
        setup["predictor"].model, residuals = resize_fno(trained["predictor"].model, data_grid)
    setup["predictor"].to(resolve_device(device))
    return setup, state, config, residuals

