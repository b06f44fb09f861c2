"""The FNO-paper presets of issue 20: splits, shared trajectories across resolutions, Burgers' FNO modes."""
import numpy as np
import pytest
import torch

from pde.data import burgers
from pde.data.presets import BURGERS, configure, get_preset


def test_burgers_presets_have_the_paper_split_and_grf():
    for name, res in (("burgers", 8192), ("burgers-1024", 1024)):
        preset = get_preset(name)
        # 1000 train + 100 validation (held out of the training part) + 200 test.
        assert (preset.n_train, preset.n_test, preset.n) == (1100, 200, 1300)
        assert (preset.gen_res, preset.res) == (8192, res)
        # μ = N(0, 625 (−Δ + 25 I)^−2): σ² = 625, τ² = 25, α = 2; ν = 0.1, t = 1.
        assert (preset.params["sigma"] ** 2, preset.params["tau"] ** 2, preset.params["alpha"]) == (625, 25, 2)
        assert (preset.params["visc"], preset.params["t_final"]) == (0.1, 1.0)
    darcy = get_preset("darcy-85")
    assert (darcy.n_train, darcy.n_test, darcy.gen_res, darcy.res) == (1100, 100, 421, 85)


def test_training_file_is_the_super_resolution_file_subsampled():
    """Both Burgers presets draw the same trajectories, so the 8192-point file is the zero-shot
    super-resolution test set of a model trained on the 1024-point file (checked on a coarser solve)."""
    fine = configure("burgers", n=3, gen_res=256, res=256)
    coarse = configure("burgers-1024", n=3, gen_res=256, res=32)
    args = lambda p: {**p.params, "gen_res": p.gen_res, "res": p.res}
    full = burgers.generate_batch(args(fine), seed=7, start=1, count=2)
    sub = burgers.generate_batch(args(coarse), seed=7, start=1, count=2)
    for key in ("a", "u"):
        np.testing.assert_array_equal(full[key][:, ::8], sub[key])
    assert np.abs(full["u"] - full["a"]).max() > 0.1  # the solve moved the data: not a copy of u0


def test_burgers_default_modes_are_the_papers_16():
    """fourier_1d.py keeps rfft modes 0..15; our default n_modes must make neuralop keep the same."""
    from neuralop.models import FNO

    from pde.experiments.problems import PROBLEM_DEFAULTS

    defaults = PROBLEM_DEFAULTS["burgers_1d"]
    model = FNO(n_modes=defaults["n_modes"], in_channels=1, out_channels=1,
                hidden_channels=defaults["hidden_channels"], n_layers=4)
    weight = model.fno_blocks.convs[0].weight
    assert tuple(weight.shape[-1:]) == (16,)
    assert defaults["hidden_channels"] == 64
    # The grid coordinate is appended to the input, as the paper's get_grid does: lifting sees 2 channels.
    lifting_in = next(m for m in model.lifting.modules() if isinstance(m, torch.nn.Conv1d)).in_channels
    assert lifting_in == 2
    assert BURGERS["visc"] == 0.1
