"""Zero-shot super-resolution: a model trained at one grid evaluated at others without retraining."""
from dataclasses import replace

import pytest
import torch

from common.errors import ConfigError
from pde.data.subsample import subsample_dataset
from pde.experiments.superresolution import evaluate_at_grids
from pde.experiments.training import TrainConfig, train
from pde.experiments.transfer import load_for_dataset

TINY = {"n_train": 8, "n_val": 2, "n_test": 3, "batch_size": 4, "n_modes": (6, 4), "hidden_channels": 6,
        "n_layers": 2, "t_in": 10, "t_out": 2, "progress": False, "epochs": 2, "device": "cpu"}


@pytest.fixture(scope="module")
def grids(tmp_path_factory):
    """The same 13 trajectories at 32² (generated) and 16² (every second point)."""
    from pde.data.presets import configure, generate

    folder = tmp_path_factory.mktemp("superres")
    preset = configure("ns-tiny", n=13, res=32, gen_res=32)
    preset = replace(preset, params={**preset.params, "t_final": 1.2, "dt": 0.02, "record_steps": 12})
    fine = generate(preset, folder / "ns32.h5", progress=False)
    coarse = subsample_dataset(fine, folder / "ns16.h5", stride=2)
    return coarse, fine


@pytest.fixture(scope="module")
def checkpoints(grids, tmp_path_factory):
    coarse, _ = grids
    folder = tmp_path_factory.mktemp("runs")
    runs = {}
    for kind in ("fft", "monarch", "dense", "diag"):
        run = train(TrainConfig(dataset=str(coarse), run_dir=str(folder / kind), transform=kind, **TINY))
        runs[kind] = [run / "best.pt"]
    return runs


def test_untrained_transform_model_moves_exactly_like_the_fft_model(grids, tmp_path):
    """At epoch 0 every learnable kind computes the FFT FNO's function; resized to the finer grid it must
    still equal the FFT FNO evaluated there (which needs no resizing)."""
    coarse, fine = grids
    predictions = {}
    for kind in ("fft", "monarch", "dense", "diag"):
        run = train(TrainConfig(dataset=str(coarse), run_dir=str(tmp_path / kind), transform=kind,
                                **{**TINY, "epochs": 1, "lr": 1e-12, "transform_lr": 1e-12}))
        setup, _, _, residuals = load_for_dataset(run / "last.pt", fine, grid=(32, 32), device="cpu")
        with torch.no_grad():
            predictions[kind] = setup["predictor"](setup["test"].x)
        if kind == "monarch":
            assert residuals and max(max(v) for v in residuals.values()) < 1e-4
    for kind in ("monarch", "dense", "diag"):
        torch.testing.assert_close(predictions[kind], predictions["fft"], rtol=1e-3, atol=1e-4)


def test_other_grid_needs_an_explicit_grid(grids, checkpoints):
    _, fine = grids
    with pytest.raises(ConfigError, match="trained at grid"):
        load_for_dataset(checkpoints["monarch"][0], fine, device="cpu")
    with pytest.raises(ConfigError, match="differs from the grid"):
        load_for_dataset(checkpoints["monarch"][0], fine, grid=(64, 64), device="cpu")


def test_errors_at_every_grid_are_those_of_a_direct_evaluation(grids, checkpoints):
    """evaluate_at_grids (the study's rel_l2@<grid>) equals predicting with the moved model by hand."""
    found = evaluate_at_grids(checkpoints["monarch"][0], list(grids), device="cpu")
    assert list(found) == ["16x16", "32x32"]
    for dataset, (label, result) in zip(grids, found.items()):
        setup, _, _, residuals = load_for_dataset(checkpoints["monarch"][0], dataset, device="cpu",
                                                  allow_resize=True)
        with torch.no_grad():
            pred = setup["predictor"](setup["test"].x)
        direct = (pred - setup["test"].y).flatten(1).norm(dim=1) / setup["test"].y.flatten(1).norm(dim=1)
        assert result["per_sample"] == pytest.approx(direct.tolist(), rel=1e-5)
        assert bool(result["residuals"]) == (label == "32x32")  # only the other grid needs re-projection
