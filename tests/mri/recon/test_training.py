import json

import pytest
import torch

from common.checkpoints import load_checkpoint
from common.errors import CheckpointError, ConfigError, NonFiniteError, RunExistsError
from common.training import read_metrics
from mri.recon.compare import run_compare
from mri.recon.evaluation import evaluate, evaluate_run
from mri.recon.models import build_model
from mri.recon.training import TrainConfig, load_model, parameter_groups, split_scans, train


def _config(scan_dir, tmp_path, **kw):
    base = dict(data_dir=str(scan_dir), model="unrolled-monarch", scale="tiny", acceleration=2.0, n_train_scans=2,
                epochs=3, batch_size=2, lr=3e-3, transform_lr=1e-3, out_dir=str(tmp_path), progress=False,
                run_name="run")
    return TrainConfig(**{**base, **kw})


def test_tiny_training_lowers_the_loss(scan_dir, tmp_path):
    run = train(_config(scan_dir, tmp_path, model="msense", epochs=4, lr=1e-2, transform_lr=1e-2))
    losses = [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and losses[-1] < 0.95 * losses[0]
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    model, cfg = load_model(run)
    assert cfg.model == "msense" and not any(p.requires_grad is False for p in model.parameters())


def _same_runs(a, b):
    for name in ("last.pt", "best.pt"):  # weights_only=True reads them
        x, y = load_checkpoint(a / name), load_checkpoint(b / name)
        assert x["epoch"] == y["epoch"] and x["best"] == y["best"]
        for key, value in x["model"].items():
            torch.testing.assert_close(y["model"][key], value, rtol=0, atol=0)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_metrics(a)) == strip(read_metrics(b))


@pytest.mark.parametrize("val_scans", [None, ["SCAN_002"]])
def test_resume_after_kill_equals_uninterrupted_run(scan_dir, tmp_path, val_scans):
    options = dict(masks="random", epochs=3, val_scans=val_scans)
    full = train(_config(scan_dir, tmp_path, run_name="full", **options))
    assert ("val_loss" in read_metrics(full)[0]) == bool(val_scans)

    def kill_after_first_epoch(epoch, record):
        if epoch == 0:
            raise KeyboardInterrupt

    cfg = _config(scan_dir, tmp_path, run_name="killed", **options)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callback=kill_after_first_epoch)
    cfg.resume = True
    cfg.stop_after = 1  # a planned stop after epoch 1, then the rest
    train(cfg)
    assert [r["epoch"] for r in read_metrics(cfg.run_dir())] == [0, 1]
    cfg.stop_after = None
    train(cfg)
    _same_runs(full, cfg.run_dir())
    for change, key in (({"lr": 1e-2}, "lr"), ({"loss": "ssim"}, "loss"), ({"masks": "fixed"}, "masks")):
        with pytest.raises(CheckpointError, match=key):
            train(_config(scan_dir, tmp_path, run_name="killed", resume=True, **{**options, **change}))
    with pytest.raises(RunExistsError):
        train(_config(scan_dir, tmp_path, run_name="killed", **options))


@pytest.mark.parametrize("change", [{"epochs": 0}, {"epochs": -1}, {"batch_size": 0}, {"lr": 0.0},
                                    {"masks": "sometimes"}, {"model": "zf"}, {"model": "varnet"}])
def test_bad_config_is_refused_before_any_file(scan_dir, tmp_path, change):
    with pytest.raises(ConfigError):
        train(_config(scan_dir, tmp_path / "out", **change))
    assert not (tmp_path / "out").exists()


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(scan_dir, tmp_path):
    def poison(epoch, record):  # after epoch 0 is saved, every later loss is NaN
        import mri.recon.losses as losses

        original = losses.reconstruction_loss
        losses.reconstruction_loss = lambda *a, **k: original(*a, **k) * float("nan")
        poison.restore = lambda: setattr(losses, "reconstruction_loss", original)

    cfg = _config(scan_dir, tmp_path, model="msense", epochs=3)
    try:
        with pytest.raises(NonFiniteError, match="epoch 1, batch 0"):
            train(cfg, callback=lambda e, r: poison(e, r) if e == 0 else None)
    finally:
        poison.restore()
    assert load_checkpoint(cfg.run_dir() / "last.pt")["epoch"] == 0
    assert [r["epoch"] for r in read_metrics(cfg.run_dir())] == [0]


def test_transform_parameters_get_their_own_group():
    model = build_model("unrolled-monarch", (16, 16), scale="tiny")
    groups = {g["name"]: g for g in parameter_groups(model, 1e-3, 1e-4, 1e-4)}
    assert groups["transform"]["lr"] == 1e-4 and groups["transform"]["weight_decay"] == 0.0
    n_transform = sum(p.numel() for p in groups["transform"]["params"])
    assert n_transform == sum(p.numel() for p in model.fourier.parameters()) > 0


def test_evaluate_and_split(scan_dir, tmp_path):
    train_ids, test_ids = split_scans(scan_dir, 2, 1)
    assert train_ids == ["SCAN_000", "SCAN_001"] and test_ids == ["SCAN_002"]
    with pytest.raises(ValueError, match="disjointly"):
        split_scans(scan_dir, 3, 1)
    report = evaluate(build_model("zf", (16, 16)), scan_dir, 2.0, test_ids, device="cpu")
    assert report["slices"] == 3 and len(report["per_volume"]) == 1 and report["psnr_mean"] > 10
    run = train(_config(scan_dir, tmp_path, model="msense", epochs=1))
    again = evaluate_run(run, scans=test_ids, device="cpu")
    assert again["psnr_mean"] == pytest.approx(report["psnr_mean"], abs=3.0)


def test_run_compare_writes_the_table(scan_dir, tmp_path):
    out = run_compare(scan_dir, models=("zf", "msense", "unrolled-fft"), accelerations=(2.0,), n_train_scans=(1, 2),
                      n_test_scans=1, epochs=1, out_dir=tmp_path / "cmp", device="cpu", scale="tiny", progress=False)
    keys = {"model", "transform", "acceleration", "n_train_scans", "psnr_mean", "psnr_se", "ssim_mean", "ssim_se",
            "nrmse_mean", "params"}
    assert all(keys <= set(r) for r in out["rows"])
    assert {(r["model"], r["n_train_scans"]) for r in out["rows"]} == {
        ("zf", 0), ("msense", 1), ("msense", 2), ("unrolled-fft", 1), ("unrolled-fft", 2)}
    for suffix in (".json", ".md", "_examples.png"):
        assert (tmp_path / "cmp" / f"mri_recon_compare{suffix}").exists()
