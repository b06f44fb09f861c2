"""`pde train --model uno` through run.py, and checkpoints that record the grids their transforms were
trained on, from which `pde eval` runs the model on another grid without the training data."""
import json
from dataclasses import replace

import pytest
import torch

import run
from common.checkpoints import load_checkpoint
from common.errors import ConfigError
from pde.experiments.evaluation import evaluate
from pde.experiments.models import trained_grids
from pde.experiments.training import TrainConfig, predict, train
from pde.experiments.transfer import load_for_dataset

TINY = ["--n-modes", "6,6", "--hidden-channels", "6", "--n-layers", "3", "--batch-size", "3", "--no-progress"]


@pytest.mark.slow  # ≈ 15 s: generation, one epoch, evaluation
def test_uno_trains_from_the_cli_and_pde_eval_loads_it(tmp_path, capsys):
    data = tmp_path / "darcy.h5"
    assert run.main(["data", "darcy-tiny", "--n", "8", "--res", "15", "--gen-res", "15", "--out", str(data)]) == 0
    out = tmp_path / "uno"
    # tiny Darcy: 5 training samples leave some grid points constant, so validation stays off (see test_training)
    assert run.main(["pde", "train", str(data), "--model", "uno", "--transform", "monarch", "--epochs", "1",
                     "--n-train", "5", "--n-test", "3", "--n-val", "0", "--out", str(out), *TINY]) == 0
    assert "test relative L2" in capsys.readouterr().out
    state = load_checkpoint(out / "best.pt")
    assert state["config"]["model"] == "uno"
    # the U on 15²: layers 0 and 1 at 15², layer 1 halving it to round(7.5) = 8, layer 2 back to 15²
    assert state["config"]["resolved"]["trained_grids"] == [[15, 15], [15, 15], [8, 8]]
    assert any("_transforms." in key for key in state["model"])
    assert run.main(["pde", "eval", str(out / "best.pt"), "--out", str(tmp_path / "eval")]) == 0
    report = json.loads((tmp_path / "eval" / "eval.json").read_text())
    assert report["model"] == "uno" and report["transform"] == "monarch" and 0 < report["rel_l2_mean"] < 10
    with pytest.raises(SystemExit, match="2"):  # argparse's choices
        run.main(["pde", "train", str(data), "--model", "unet", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'unet'" in capsys.readouterr().err


@pytest.fixture(scope="module")
def ns_pair(tmp_path_factory):
    """The same Navier–Stokes trajectories at 16² and at 24² (one 48² simulation, subsampled)."""
    from pde.data.presets import configure, generate

    folder = tmp_path_factory.mktemp("ns")
    paths = []
    for res in (16, 24):
        preset = configure("ns-tiny", n=10, res=res, gen_res=48)
        preset = replace(preset, params={**preset.params, "t_final": 1.2, "dt": 0.02, "record_steps": 12})
        paths.append(generate(preset, folder / f"ns{res}.h5", progress=False))
    return paths


@pytest.mark.parametrize("model", ["fno", "uno"])
def test_checkpoint_records_its_grids_and_eval_runs_on_another_grid_from_them(ns_pair, tmp_path, model):
    coarse, fine = ns_pair
    training = tmp_path / "train16.h5"
    training.write_bytes(coarse.read_bytes())
    config = TrainConfig(dataset=str(training), run_dir=str(tmp_path / "run"), transform="dense", model=model,
                         epochs=2, n_train=6, n_test=4, batch_size=3, n_modes=(8, 6), hidden_channels=6, n_layers=3,
                         t_in=10, t_out=2, progress=False, lr=3e-3)
    run_dir = train(config)
    resolved = load_checkpoint(run_dir / "best.pt")["config"]["resolved"]
    assert resolved["grid"] == [16, 16]
    expected = [[16, 16]] * 3 if model == "fno" else [[16, 16], [16, 16], [8, 8]]
    assert resolved["trained_grids"] == expected
    assert json.loads((run_dir / "config.json").read_text())["resolved"]["trained_grids"] == expected

    # the reference before the training file goes: the older route (rebuilt on the training data's grid,
    # then every conv resized to 24² by LearnableDFT.resized); for dense transforms it computes the same
    reference = None
    if model == "fno":  # resize_fno moves every conv to the input grid, which is right for the FNO only
        setup, _, _, _ = load_for_dataset(run_dir / "best.pt", fine, grid=(24, 24))
        reference = predict(setup["predictor"], setup["test"].x, torch.device("cpu"), 4)
    training.unlink()  # from here on only the checkpoint's record says where the transforms live
    with pytest.raises(ConfigError, match=r"trained at grid \(16, 16\)"):
        evaluate(run_dir / "best.pt", fine, tmp_path / "e0", plot=False)
    report = evaluate(run_dir / "best.pt", fine, tmp_path / "e1", plot=False, grid=(24, 24))
    assert report["grid"] == [24, 24] and report["trained_grids"] == expected and report["model"] == model
    assert 0 < report["rel_l2_mean"] < 10
    if reference is not None:
        from pde.experiments.evaluation import load_checkpoint as load_run

        setup, _, _ = load_run(run_dir / "best.pt", fine, grid=(24, 24))
        assert trained_grids(setup["predictor"].model) == [tuple(g) for g in expected]
        got = predict(setup["predictor"], setup["test"].x, torch.device("cpu"), 4)
        assert (got - reference).norm() / reference.norm() < 1e-4


def test_resuming_a_run_from_before_the_grid_record(ns_pair, tmp_path):
    """A checkpoint written without "resolved" / "model" in its config still resumes."""
    from common.checkpoints import save_checkpoint

    config = TrainConfig(dataset=str(ns_pair[0]), run_dir=str(tmp_path / "run"), transform="dense", epochs=2,
                         n_train=6, n_test=4, batch_size=3, n_modes=(8, 6), hidden_channels=6, n_layers=2, t_in=10,
                         t_out=2, progress=False, stop_after=1)
    train(config)
    last = tmp_path / "run" / "last.pt"
    state = load_checkpoint(last)
    state["config"] = {k: v for k, v in state["config"].items() if k not in ("resolved", "model")}
    save_checkpoint(state, last)
    train(replace(config, stop_after=None, resume=True))
    assert load_checkpoint(last)["epoch"] == 1
