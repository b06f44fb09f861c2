"""benchmarks.steps: goals from measured ratios and profiles of a missed goal."""
from __future__ import annotations

import torch

from benchmarks import steps

TINY = {"fno": {"batch": 1, "grid": 16, "n_modes": (4, 4), "n_layers": 1},
        "mri": {"batch": 1, "grid": 16, "coils": 2, "scale": "tiny"}}


def test_goal_checks_compare_each_ratio_with_its_limit():
    rows = [{"model": "fno", "kind": "monarch", "ratio_to_fft": 1.31},
            {"model": "mri", "kind": "monarch", "ratio_to_fft": 1.29}]
    goals = {g["model"]: g for g in steps.goal_checks(rows)}
    assert goals["fno"]["met"] is False and goals["mri"]["met"] is True
    assert steps.goal_checks([])[0]["met"] is None  # not measured is neither met nor missed


def test_a_step_trains_the_model_and_the_fft_ratio_is_one():
    step, model = steps.mri_step("monarch", torch.device("cpu"), settings=TINY["mri"])
    before = [p.detach().clone() for p in model.parameters()]
    step()
    assert any(not torch.equal(a, p) for a, p in zip(before, model.parameters()))  # Adam moved the weights
    result = steps.measure_steps(torch.device("cpu"), ("mri",), ("fft", "monarch"), rounds=1, warmup=0,
                                 settings=TINY)
    ratios = {r["kind"]: r["ratio_to_fft"] for r in result["rows"]}
    assert ratios["fft"] == 1.0 and ratios["monarch"] > 0


def test_a_missed_goal_is_profiled_against_fft():
    goals = [{"model": "mri", "kind": "monarch", "limit": 1.3, "ratio": 2.0, "met": False}]
    profiles = steps.profiles_for_missed_goals(torch.device("cpu"), goals, amp=False, settings=TINY)
    assert set(profiles) == {"mri/monarch", "mri/fft", "mri/monarch − fft"}
    assert all(o["self_ms_per_step"] > 0 for o in profiles["mri/fft"])
    assert not any("_fft_" in o["op"] for o in profiles["mri/monarch"])  # no FFT inside the Monarch A
    assert any("_fft_" in o["op"] for o in steps.profile_steps(
        {"fft": steps.mri_step("fft", torch.device("cpu"), settings=TINY["mri"])[0]}, "cpu", calls=1)["fft"])



def test_the_ns_rollout_step_predicts_t_out_frames_and_trains_the_fno():
    """bench steps' ns model: the whole autoregressive rollout of pde's Predictor, one FNO call per frame."""
    settings = {**TINY["fno"], "t_out": 3}
    step, predictor = steps.ns_step("monarch", torch.device("cpu"), settings=settings)
    x = torch.randn(2, steps.FNO_SETTINGS["in_channels"], settings["grid"], settings["grid"])
    assert predictor(x).shape == (2, 3, settings["grid"], settings["grid"])
    before = [p.detach().clone() for p in predictor.parameters()]
    step()
    assert all(not torch.equal(a, p) for a, p in zip(before, predictor.parameters()) if p.requires_grad)
