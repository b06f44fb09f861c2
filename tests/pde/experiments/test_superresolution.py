"""Zero-shot super-resolution: a model trained at one grid evaluated at others without retraining."""
import json
from dataclasses import replace

import pytest
import torch

from common.errors import ConfigError
from pde.data.subsample import subsample_dataset
from pde.experiments.superresolution import run_superresolution
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


def test_study_writes_report_with_every_grid(grids, checkpoints, tmp_path):
    report = run_superresolution(checkpoints, list(grids), tmp_path, device="cpu", command="test")
    assert report["grids"] == ["16x16", "32x32"]
    saved = json.loads((tmp_path / "pde_superresolution.json").read_text())
    for kind in checkpoints:
        for grid in report["grids"]:
            values = saved["summary"][kind][grid]["per_seed_per_sample"]
            assert len(values) == 1 and len(values[0]) == TINY["n_test"]
    assert saved["goal"] is not None
    assert (tmp_path / "pde_superresolution.png").stat().st_size > 0
    assert (tmp_path / "pde_superresolution_fields.png").stat().st_size > 0
    # an FFT model evaluated at its own grid gives the same error through the study as directly
    setup, _, _, _ = load_for_dataset(checkpoints["fft"][0], grids[0], device="cpu")
    with torch.no_grad():
        pred = setup["predictor"](setup["test"].x)
    direct = ((pred - setup["test"].y).flatten(1).norm(dim=1) / setup["test"].y.flatten(1).norm(dim=1)).mean()
    assert saved["summary"]["fft"]["16x16"]["mean"] == pytest.approx(float(direct), rel=1e-5)
