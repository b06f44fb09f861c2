import json

import pytest
import torch

from mri.recon.compare import run_compare
from mri.recon.evaluation import evaluate, evaluate_run
from mri.recon.models import build_model
from mri.recon.training import TrainConfig, load_model, parameter_groups, split_scans, train


def _config(scan_dir, tmp_path, **kw):
    base = dict(data_dir=str(scan_dir), model="unrolled-monarch", scale="tiny", acceleration=2.0, n_train_scans=2,
                epochs=3, batch_size=2, lr=3e-3, transform_lr=1e-3, out_dir=str(tmp_path), progress=False)
    return TrainConfig(**{**base, **kw})


def test_tiny_training_lowers_the_loss(scan_dir, tmp_path):
    run = train(_config(scan_dir, tmp_path, model="msense", epochs=4, lr=1e-2, transform_lr=1e-2))
    losses = [json.loads(line)["train_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert len(losses) == 4 and losses[-1] < 0.95 * losses[0]
    assert (run / "best.pt").exists() and (run / "last.pt").exists()
    model, cfg = load_model(run)
    assert cfg.model == "msense" and not any(p.requires_grad is False for p in model.parameters())


def test_resume_after_kill_equals_uninterrupted_run(scan_dir, tmp_path):
    full = train(_config(scan_dir, tmp_path, run_name="full", masks="random", mask_bank=2, epochs=2))

    def kill_after_first_epoch(epoch, record):
        if epoch == 0:
            raise KeyboardInterrupt

    cfg = _config(scan_dir, tmp_path, run_name="killed", masks="random", mask_bank=2, epochs=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, callback=kill_after_first_epoch)
    cfg.resume = True
    train(cfg)
    a = torch.load(full / "last.pt", weights_only=False)
    b = torch.load(cfg.run_dir() / "last.pt", weights_only=False)
    assert b["epoch"] == 1 and [r["train_loss"] for r in a["history"]] == [r["train_loss"] for r in b["history"]]
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, rtol=0, atol=0)


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
    report = evaluate(build_model("zf", (16, 16)), scan_dir, 2.0, test_ids)
    assert report["slices"] == 3 and len(report["per_volume"]) == 1 and report["psnr_mean"] > 10
    run = train(_config(scan_dir, tmp_path, model="msense", epochs=1))
    again = evaluate_run(run, scans=test_ids)
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
