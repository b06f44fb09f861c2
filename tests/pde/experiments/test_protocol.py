"""The comparison protocol on a tiny Navier–Stokes file: splits, selection, seeds, bootstrap, resume, report."""
import argparse
import json
import shutil
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from common.errors import ConfigError
from pde.experiments import protocol
from pde.experiments.protocol import ProtocolConfig, Run, run_protocol
from pde.experiments.protocol_report import summarize, write_report

SPLIT = (8, 2, 4)  # training block incl. validation, validation, test (of 12 samples)
TINY = dict(n_train=8, n_val=2, n_test=4, t_out=2, epochs=3, batch_size=3, n_modes=(8, 6), hidden_channels=6,
            n_layers=2, lr=3e-3, jobs=0, device="cpu")


@pytest.fixture(scope="module")
def ns_file(tmp_path_factory):
    from pde.data.presets import configure, generate

    preset = configure("ns-tiny", n=12, res=16, gen_res=16)
    preset = replace(preset, params={**preset.params, "t_final": 1.2, "dt": 0.02, "record_steps": 12})
    return generate(preset, tmp_path_factory.mktemp("data") / "ns16.h5", progress=False)


def _config(ns_file, out, **changes):
    return ProtocolConfig(dataset=str(ns_file), out=str(out), **{**TINY, "methods": ("fft",), "seeds": (0,), **changes})


def _tiny_run(ns_file, run_dir, phase="final", seed=0, epochs=3, dataset=None):
    config = _config(dataset or ns_file, run_dir)
    values = {**protocol.base_options(config, *SPLIT), "transform": "fft", "lr": 3e-3, "seed": seed,
              "epochs": epochs, "step_size": 100}
    return Run(str(run_dir), values, "fft", phase, {"lr": 3e-3}, seed, SPLIT)


def test_subsample_keeps_every_kth_point_and_the_layout(ns_file, tmp_path):
    from pde.data.readers import load_dataset

    out = protocol.subsample_dataset(ns_file, tmp_path / "ns8.h5", stride=2)
    fine, coarse = load_dataset(ns_file), load_dataset(out)
    np.testing.assert_array_equal(coarse["u"], fine["u"][:, ::2, ::2])
    np.testing.assert_array_equal(coarse["a"], fine["a"][:, ::2, ::2])
    np.testing.assert_array_equal(coarse["t"], fine["t"])
    assert coarse.meta["attrs"]["n_train"] == fine.meta["attrs"]["n_train"]
    assert json.loads(coarse.meta["attrs"]["generator_params"])["res"] == 8


def test_test_split_is_not_read_before_the_final_evaluation(ns_file, tmp_path):
    # Change the test samples only: training, validation and checkpoint selection must be bit-identical,
    # while the final evaluation on the changed file does see the change (so it would be noticed).
    changed = tmp_path / "changed.h5"
    shutil.copy(ns_file, changed)
    with h5py.File(changed, "r+") as f:
        for key in ("a", "u"):
            f[key][SPLIT[0]:SPLIT[0] + SPLIT[2]] = -3 * f[key][SPLIT[0]:SPLIT[0] + SPLIT[2]] + 1
    runs = {name: protocol.execute(_tiny_run(ns_file, tmp_path / name, phase="tune", dataset=path))
            for name, path in (("clean", ns_file), ("changed", changed))}
    assert all("test" not in r for r in runs.values())
    assert [c["val_rel_l2"] for c in runs["clean"]["curve"]] == [c["val_rel_l2"] for c in runs["changed"]["curve"]]
    weights = [torch.load(tmp_path / name / "best.pt", weights_only=True)["model"] for name in ("clean", "changed")]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    tests = [protocol.evaluate_test(tmp_path / name / "best.pt", SPLIT)["rel_l2_mean"] for name in ("clean", "changed")]
    assert tests[0] != tests[1]


def test_best_checkpoint_follows_validation_and_final_reads_it(ns_file, tmp_path):
    result = protocol.execute(_tiny_run(ns_file, tmp_path / "run", epochs=5))
    values = [c["val_rel_l2"] for c in result["curve"]]
    assert result["best_epoch"] == int(np.argmin(values)) and result["best_val_rel_l2"] == min(values)
    assert result["test"]["epoch"] == result["best_epoch"]
    best = torch.load(tmp_path / "run" / "best.pt", weights_only=True)
    assert best["epoch"] == result["best_epoch"]
    assert len(result["test"]["rel_l2_per_sample"]) == SPLIT[2] and len(result["test"]["rel_l2_per_step"]) == 2


def _fake_results(per_sample: np.ndarray, method: str) -> dict:
    return {int(seed): {"method": method, "seed": int(seed), "point": {}, "test": {
        "rel_l2_mean": float(row.mean()), "rel_l2_per_sample": row.tolist(), "rel_l2_per_step": [float(row.mean())],
        "epoch": 0}, "best_val_rel_l2": 0.1, "params": {"total": 1, "transform": 0}, "seconds_per_epoch": 1.0,
        "train_seconds": 1.0, "train_config": {"epochs": 1}, "curve": [{"epoch": 0, "val_rel_l2": 0.1, "seconds": 1.0}]}
        for seed, row in enumerate(per_sample)}


def test_bootstrap_interval_contains_one_for_identical_runs_and_not_for_a_better_model():
    rng = np.random.default_rng(0)
    errors = rng.uniform(0.05, 0.15, size=(3, 40))
    found = {"fft": _fake_results(errors, "fft"), "dense": _fake_results(errors.copy(), "dense"),
             "monarch": _fake_results(0.7 * errors * rng.uniform(0.9, 1.1, errors.shape), "monarch")}
    comparisons = {(c["a"], c["b"]): c for c in summarize(found)["comparisons"]}
    same, better = comparisons[("dense", "fft")], comparisons[("monarch", "fft")]
    assert same["low"] <= 1 <= same["high"] and same["estimate"] == pytest.approx(1)
    assert better["high"] < 1 and better["estimate"] == pytest.approx(0.7, abs=0.03)
    assert comparisons[("monarch", "dense")]["high"] < 1
    assert (same["n_seeds"], same["n_samples"]) == (3, 40)
    assert same["t_interval"]["low"] <= 1 <= same["t_interval"]["high"]


def test_seeds_differ_repeat_exactly_resume_and_report(ns_file, tmp_path, monkeypatch):
    monkeypatch.chdir(Path(__file__).resolve().parents[3])
    out = run_protocol(_config(ns_file, tmp_path / "a", seeds=(0, 1), jobs=2), log=lambda _: None)
    results = {s: json.loads((out / "final" / "fft" / f"seed{s}" / "result.json").read_text()) for s in (0, 1)}
    assert results[0]["test"]["rel_l2_per_sample"] != results[1]["test"]["rel_l2_per_sample"]
    again = run_protocol(_config(ns_file, tmp_path / "b", seeds=(1,)), log=lambda _: None)
    repeat = json.loads((again / "final" / "fft" / "seed1" / "result.json").read_text())
    assert repeat["test"]["rel_l2_per_sample"] == results[1]["test"]["rel_l2_per_sample"]
    # a rerun skips finished runs
    stamp = (out / "final" / "fft" / "seed0" / "result.json").stat().st_mtime_ns
    messages = []
    run_protocol(_config(ns_file, tmp_path / "a", seeds=(0, 1), jobs=2), log=messages.append)
    assert (out / "final" / "fft" / "seed0" / "result.json").stat().st_mtime_ns == stamp
    assert any("skipped" in m for m in messages)
    # merging folders: seed 1 twice is refused, other seeds merge
    with pytest.raises(ConfigError, match="seed 1"):
        write_report([out, again], tmp_path / "merged")
    report = write_report([out], tmp_path / "r")
    saved = json.loads((tmp_path / "r.json").read_text())
    assert saved["summary"]["methods"]["fft"]["test_rel_l2_per_seed"] == report["summary"]["methods"]["fft"][
        "test_rel_l2_per_seed"]
    assert len(saved["summary"]["methods"]["fft"]["test_rel_l2_per_sample"]) == 2
    assert (tmp_path / "r.png").stat().st_size > 0 and "| fft | 2 |" in (tmp_path / "r.md").read_text()


def test_tuning_gives_equal_budgets_picks_on_validation_and_matches_parameters(ns_file, tmp_path):
    from pde.experiments.models import TRANSFORMS

    methods = tuple(m for m in ("fft", "monarch", "diag") if m in TRANSFORMS) + ("fft-more-modes",)
    config = _config(ns_file, tmp_path / "p", methods=methods, tune=True, lrs=(1e-3, 5e-3), weight_decays=(0.0, 1e-4),
                     transform_lrs=(1e-3, 1e-2), tune_epochs=2, epochs=2)
    with pytest.raises(ConfigError, match="unequal tuning budgets"):
        protocol.check_equal_budget(replace(config, weight_decays=(0.0,)))
    out = run_protocol(config, log=lambda _: None)
    tuning = json.loads((out / "tuning.json").read_text())
    for method, points in tuning["points"].items():
        assert len(points) == 4 and len(tuning["grid"][method]) == 4
        assert tuning["chosen"][method] == min(points, key=lambda p: p["best_val_rel_l2"])["point"]
    assert {tuple(sorted(p["point"])) for p in tuning["points"]["fft"]} == {("lr", "weight_decay")}
    assert "transform_lr" in tuning["points"]["monarch"][0]["point"]
    final = json.loads((out / "final" / "monarch" / "seed0" / "result.json").read_text())
    assert final["point"] == tuning["chosen"]["monarch"] and final["train_config"]["epochs"] == 2
    more = json.loads((out / "more_modes.json").read_text())
    fft_params = json.loads((out / "final" / "fft" / "seed0" / "result.json").read_text())["params"]["total"]
    assert tuple(more["n_modes"]) != (8, 6) and all(m >= d for m, d in zip(more["n_modes"], (8, 6)))
    assert more["params"] > fft_params
    assert (out / "report.md").read_text().count("(chosen)") == len(tuning["points"])


def test_monarch_block_sizes_spend_monarch_budget(ns_file, tmp_path):
    config = _config(ns_file, tmp_path, methods=("fft", "monarch"), lrs=(1e-3,), weight_decays=(0.0, 1e-4),
                     monarch_axis=("1e-3@2,8", "1e-2@4,4"))
    grid = protocol.tuning_grid("monarch", config)
    assert protocol.check_equal_budget(config) == 2
    assert grid[0]["monarch_sizes"] == (2, 8) and grid[1]["transform_lr"] == 1e-2
    with pytest.raises(ConfigError, match="LR@B1,B2"):
        protocol.parse_monarch_axis(["fast@4"])


def test_gpu_preset_dry_run_at_tiny_size(ns_file, tmp_path):
    parser = argparse.ArgumentParser()
    protocol.add_protocol_arguments(parser)
    preset = protocol.config_from_args(parser.parse_args([str(ns_file), "--preset", "gpu"]))
    assert (preset.n_train, preset.n_val, preset.n_test, preset.t_out, preset.epochs) == (1000, 100, 200, 10, 40)
    assert preset.methods == ("fft", "dense", "monarch", "diag") and preset.device == "cuda"
    args = parser.parse_args([str(ns_file), "--preset", "gpu", "--out", str(tmp_path / "gpu"), "--n-train", "8",
                              "--n-val", "2", "--n-test", "4", "--t-out", "2", "--epochs", "1", "--n-modes", "8,6",
                              "--hidden-channels", "6", "--n-layers", "2", "--device", "cpu", "--jobs", "0",
                              "--methods", "fft,monarch"])
    config = protocol.config_from_args(args)
    assert config.seeds == (0,) and config.step_fraction == 0.25 and config.device == "cpu"
    run_protocol(config, log=lambda _: None)
    report = json.loads((tmp_path / "gpu" / "report.json").read_text())
    assert set(report["summary"]["methods"]) == {"fft", "monarch"}


def test_more_modes_picks_the_closest_parameter_count_above_the_default():
    def count(values):  # a stand-in parameter count: 100 per kept mode pair
        return 100 * values["n_modes"][0] * values["n_modes"][1]

    modes, params = protocol.more_modes_for({}, target_params=100 * 10 * 12 + 30, grid=(16, 16), default_modes=(8, 6),
                                            count=count)
    assert modes in {(10, 12), (12, 10)} and params == 12000
    modes, params = protocol.more_modes_for({}, target_params=0, grid=(16, 16), default_modes=(8, 6), count=count)
    assert modes == (10, 6) and params == 6000  # the smallest step up when Monarch adds almost nothing


def test_fft_padded_is_a_tuned_fft_baseline_with_domain_padding(ns_file, tmp_path):
    config = _config(ns_file, tmp_path, methods=("fft", "monarch", "fft-padded"), padding=0.25)
    assert protocol.tuning_grid("fft-padded", config) == protocol.tuning_grid("fft", config)
    assert protocol.check_equal_budget(config) == 9
    assert protocol.method_options("fft-padded", 0.25) == {"transform": "fft", "fno_kwargs": {"domain_padding": 0.25}}
    runs = protocol.tuning_runs(config, SPLIT)
    padded = [r for r in runs if r.method == "fft-padded"]
    assert len(padded) == 9 and all(r.train["fno_kwargs"] == {"domain_padding": 0.25} for r in padded)
    assert all("fno_kwargs" not in r.train for r in runs if r.method == "fft")
