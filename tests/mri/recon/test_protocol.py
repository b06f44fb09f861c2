"""The MRI protocol driver (mri.recon.protocol) and its report: subject-disjoint splits checked on
generated files, per-sample training masks, the equal tuning grid, the bootstrap of identical runs,
and a tiny end-to-end run of the GPU preset that writes the report and resumes without retraining."""
import json
import shutil

import h5py
import numpy as np
import pytest

from common.errors import ConfigError
from mri.recon import protocol_report
from mri.recon.protocol import (PROTOCOLS, ProtocolConfig, check_splits, effective_grid, ensure_datasets,
                                run_protocol, scan_subjects, train_config)

TINY_SIM = {"shape": (32, 32), "slices": 2, "n_train": 2, "n_val": 1, "n_test": 2, "coils": 3,
            "accelerations": (2.0, 4.0), "espirit_max_iter": 10}


def tiny(cfg: ProtocolConfig, root) -> ProtocolConfig:
    """`cfg` shrunk to seconds on a CPU (same code path, tiny sizes)."""
    return cfg.replace(sim_preset="tiny", sim_overrides=TINY_SIM, data_root=str(root / "data"),
                       accelerations=(2.0,), mismatch_accelerations=(2.0,), tune_acceleration=2.0,
                       curve_acceleration=2.0, example_acceleration=2.0, curve_n=(1, 2), seeds=(0, 1), epochs=1,
                       batch_size=2, learned_models=("unet", "msense", "unrolled-fft", "unrolled-monarch"),
                       curve_models=("unet", "msense"), classical_models=("zf", "cg-sense"),
                       lr_grid=(1e-3,), transform_lr_grid=(1e-3,), classical_iters=3, min_test_volumes=2,
                       n_resamples=200, device="cpu", jobs=2, mask_pool=8, out_dir=str(root / "runs"), report_dir=str(root / "report"))


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    root = tmp_path_factory.mktemp("protocol")
    cfg = tiny(PROTOCOLS["gpu"], root)
    return root, cfg, ensure_datasets(cfg, progress=False)


def test_generated_splits_never_share_subjects(datasets):
    _, cfg, folders = datasets
    splits = check_splits(folders, cfg.min_test_volumes)
    assert {k: len(v) for k, v in splits.items()} == {"train": 2, "val": 1, "test": 2}
    for folder in folders.values():  # read back independently of check_splits
        files = scan_subjects(folder)
        by_split = {}
        for subject, split in files.values():
            by_split.setdefault(split, set()).add(subject)
        assert not (by_split["train"] & by_split["test"]) and not (by_split["train"] & by_split["val"])
        assert not (by_split["val"] & by_split["test"])
    # the mismatch track holds the same subjects, but its k-space differs from the exact track's
    with h5py.File(folders["exact"] / "SIM_000.h5") as a, h5py.File(folders["mismatch"] / "SIM_000.h5") as b:
        assert a.attrs["subject_id"] == b.attrs["subject_id"]
        assert not np.allclose(a["kspace"][0], b["kspace"][0])


def test_a_subject_in_two_splits_is_refused(datasets, tmp_path):
    _, cfg, folders = datasets
    bad = tmp_path / "bad"
    shutil.copytree(folders["exact"], bad)
    test_scan = json.loads((bad / "meta.json").read_text())["splits"]["test"][0]
    shutil.copy(bad / "SIM_000.h5", bad / f"{test_scan}.h5")  # a training subject's file posing as a test scan
    with h5py.File(bad / f"{test_scan}.h5", "a") as f:
        f.attrs["split"] = "test"
    with pytest.raises(ConfigError, match="is in both"):
        check_splits({"exact": bad})
    with pytest.raises(ConfigError, match="test volumes"):
        check_splits({"exact": folders["exact"]}, min_test_volumes=3)


def test_training_masks_differ_between_samples_and_repeat_with_the_seed(datasets, tmp_path):
    from mri.recon.training import ReconTask, draw_mask, random_mask, training_scans

    _, cfg, _ = datasets

    def masks(seed, epoch=0, protocol=cfg.replace(mask_pool=None)):
        tc = train_config(protocol, "msense", "exact", 2.0, 2, seed, 1e-3, 1e-3)
        task = ReconTask(tc, *training_scans(tc))
        task.data.set_epoch(epoch)
        return [task.data[i]["mask"].numpy() for i in range(len(task.data))]

    first = masks(0)
    assert len(first) == 4
    assert all(not np.array_equal(first[0], m) for m in first[1:])  # every training slice its own mask
    assert all(np.array_equal(a, b) for a, b in zip(first, masks(0)))  # replayed by the seed
    assert not np.array_equal(first[0], masks(1)[0]) and not np.array_equal(first[0], masks(0, epoch=1)[0])
    # the memoised draw is the plain draw (sigpy's Poisson-disc kernel behind masks.poisson_disc_mask)
    from mri.data.masks import calibration_width, poisson_disc_mask

    seed = int(np.random.SeedSequence([0, 0, 0]).generate_state(1)[0])
    calib = calibration_width((32, 32))
    assert np.array_equal(random_mask((32, 32), 2.0, 0, 0, 0), poisson_disc_mask((32, 32), 2.0, (calib, calib), seed))
    assert abs(first[0].size / first[0].sum() - 2.0) < 0.11
    # pool mode (the protocol's mask_pool, passed through TrainConfig): samples take masks of a seeded
    # pool of P drawn into <out_dir>/masks, still per sample and replayable
    pooled_cfg = cfg.replace(mask_pool=3, out_dir=str(tmp_path / "runs"))
    pooled = masks(0, epoch=2, protocol=pooled_cfg)
    assert train_config(pooled_cfg, "msense", "exact", 2.0, 2, 0, 1e-3, 1e-3).mask_pool == 3
    pool = [draw_mask((32, 32), 2.0, 0, 1_000_000, j) for j in range(3)]
    assert all(any(np.array_equal(m, p) for p in pool) for m in pooled)
    assert len({m.tobytes() for m in pooled}) >= 2
    assert all(np.array_equal(a, b) for a, b in zip(pooled, masks(0, epoch=2, protocol=pooled_cfg)))
    files = list((tmp_path / "runs" / "masks").glob("pool3_32x32_acc2_seed0.npy"))
    assert len(files) == 1 and np.array_equal(np.load(files[0]), np.stack(pool))


def test_equal_grid_collapses_only_inert_axes():
    cfg = ProtocolConfig(scale="tiny", lr_grid=(1e-3, 3e-3), transform_lr_grid=(1e-3, 1e-2))
    assert effective_grid("unrolled-monarch", (16, 16), cfg) == [(1e-3, 1e-3), (1e-3, 1e-2), (3e-3, 1e-3), (3e-3, 1e-2)]
    assert effective_grid("unrolled-fft", (16, 16), cfg) == [(1e-3, 1e-3), (3e-3, 1e-3)]  # no transform params
    assert effective_grid("msense", (16, 16), cfg) == [(1e-3, 1e-3), (1e-3, 1e-2)]  # no network params


def _fake_result(a_values, b_values, seeds=(0, 1, 2)):
    cells = []
    for name, vals in (("a", a_values), ("b", b_values)):
        for s, row in zip(seeds, vals):
            cells.append({"model": name, "track": "exact", "acceleration": 4.0, "n_train": 8, "seed": s,
                          "per_volume": [{"scan_id": f"S{i}", "psnr_fastmri": v} for i, v in enumerate(row)]})
    return {"config": {"curve_n": [8]}, "splits": {"test": [f"S{i}" for i in range(len(a_values[0]))]}, "cells": cells}


def test_bootstrap_of_identical_runs_contains_zero_and_finds_a_shift():
    rng = np.random.default_rng(0)
    runs = rng.normal(30, 2, size=(3, 10))
    same = protocol_report.difference(_fake_result(runs, runs.copy()), "a", "b", "exact", 4.0, n_resamples=500)
    assert same["estimate"] == 0 and same["low"] <= 0 <= same["high"] and (same["n_seeds"], same["n_samples"]) == (3, 10)
    shifted = protocol_report.difference(_fake_result(runs + 1.0 + rng.normal(0, 0.1, runs.shape), runs), "a", "b",
                                         "exact", 4.0, n_resamples=500)
    assert 0.8 < shifted["low"] < 1.0 < shifted["high"] < 1.2
    # a deterministic baseline (one row) is paired with every seed's run of the same volume
    base = _fake_result(runs, runs[:1])
    base["cells"] = [c for c in base["cells"] if c["model"] == "a" or c["seed"] == 0]
    for c in base["cells"]:
        if c["model"] == "b":
            c["seed"] = None
    tiled = protocol_report.difference(base, "a", "b", "exact", 4.0, n_resamples=500)
    assert (tiled["n_seeds"], tiled["n_samples"]) == (3, 10) and tiled["estimate"] == pytest.approx(runs.mean() - runs[0].mean())


def test_gpu_preset_dry_run_at_tiny_size_writes_the_report_and_resumes(datasets):
    root, cfg, _ = datasets
    result = run_protocol(cfg, command="pytest tiny gpu preset", log=lambda *_: None)
    report = root / "report"
    for suffix in (".md", ".json", ".png", "_examples.png"):
        assert (report / f"{cfg.stem}{suffix}").stat().st_size > 0
    assert not result["not_run"]
    assert len(list((root / "runs" / "masks").glob("pool8_32x32_*.npy"))) == 2  # (2×, seeds 0 and 1)
    payload = json.loads((report / f"{cfg.stem}.json").read_text())
    learned = [c for c in payload["cells"] if c["seed"] is not None]
    # 4 models × 2 tracks × 2 seeds (N = 2) + 2 curve models × 2 seeds (N = 1)
    assert len(learned) == 4 * 2 * 2 + 2 * 2
    assert {c["track"] for c in learned} == {"exact", "mismatch"}
    assert all(set(v) >= {"psnr_fastmri", "ssim_fastmri", "ssim_skmtea"} for c in learned for v in c["per_volume"])
    assert "unrolled-monarch - unrolled-fft | mismatch | 2x | psnr_fastmri" in payload["intervals"]
    text = (report / f"{cfg.stem}.md").read_text()
    assert "exact track — SSIM SKM-TEA" in text and "mismatch track — PSNR (dB)" in text and "Data efficiency" in text
    # resumable: a rerun trains nothing and tests nothing again
    stamps = {p: p.stat().st_mtime_ns for p in (root / "runs").rglob("*") if p.suffix in (".pt", ".jsonl", ".json")}
    again = run_protocol(cfg, command="pytest rerun", log=lambda *_: None)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert [c["per_volume"] for c in again["cells"]] == [c["per_volume"] for c in result["cells"]]
