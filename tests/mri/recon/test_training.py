import json

import pytest
import torch

from common.checkpoints import load_checkpoint
from common.errors import CheckpointError, ConfigError, NonFiniteError, RunExistsError
from common.training import read_metrics
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
                                    {"masks": "sometimes"}, {"model": "zf"}, {"model": "varnet"},
                                    {"mask_pool": 4}, {"mask_pool": 0, "masks": "random"}])
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


def test_mask_memo_returns_the_fresh_draw_and_stays_bounded():
    import numpy as np

    from mri.data.masks import calibration_width, poisson_disc_mask
    from mri.recon.training import MaskMemo, draw_mask, random_mask

    key = ((24, 20), 3.0, 5, 2, 7)
    fresh = draw_mask(*key)
    calib = calibration_width((24, 20))  # the draw itself: the seeded Poisson-disc mask of (seed, epoch, slice)
    seed = int(np.random.SeedSequence([5, 2, 7]).generate_state(1)[0])
    assert np.array_equal(fresh, poisson_disc_mask((24, 20), 3.0, (calib, calib), seed))
    first, again = random_mask(*key), random_mask(*key)
    assert first.dtype == np.float32 and np.array_equal(first, fresh) and np.array_equal(again, fresh)
    first[:] = 0  # a copy each call: a caller's change does not reach the memo
    assert np.array_equal(random_mask(*key), fresh)
    assert not np.array_equal(random_mask((24, 20), 3.0, 5, 2, 8), fresh)
    memo, calls = MaskMemo(max_bytes=2 * 480), []
    draw = lambda k: (lambda: calls.append(k) or draw_mask(*k))  # noqa: E731
    keys = [((24, 20), 3.0, 5, 2, i) for i in range(3)]
    for k in keys + keys[2:]:  # 480 bytes each: the third evicts the first; the repeat is remembered
        assert np.array_equal(memo.get(k, draw(k)), draw_mask(*k))
    assert calls == keys and memo.nbytes == 2 * 480 and list(memo.items) == keys[1:]
    memo.get(keys[0], draw(keys[0]))
    assert calls == keys + keys[:1]  # evicted, so drawn again


class _Reader:
    """A reader of constant slices (2 coils, 16, 16): the mask tests only need shapes."""
    def __getitem__(self, i):
        import numpy as np

        return {"kspace": np.ones((2, 16, 16), np.complex64), "maps": np.ones((2, 16, 16), np.complex64),
                "target": np.zeros((16, 16), np.complex64), "scan_id": "s", "slice_index": i}


def test_mask_pool_repeats_with_the_seed_and_draws_only_from_the_pool(tmp_path):
    import numpy as np

    from mri.recon.training import POOL_EPOCH, ReconSlices, draw_mask, mask_pool, mask_pool_file, pool_slot

    def masks(seed, epoch, folder=None, pool=3):
        data = ReconSlices(_Reader(), range(6), "random", 2.0, seed, mask_pool=pool, mask_pool_dir=folder)
        data.set_epoch(epoch)
        return [data[i]["mask"].numpy() for i in range(len(data))]

    pool = [draw_mask((16, 16), 2.0, 1, POOL_EPOCH, j) for j in range(3)]
    for epoch in range(3):
        drawn = masks(1, epoch)
        slots = [pool_slot(1, epoch, i, 3) for i in range(6)]
        assert all(np.array_equal(m, pool[j]) for m, j in zip(drawn, slots))  # member pool_slot(seed, epoch, i)
        assert all(np.array_equal(a, b) for a, b in zip(drawn, masks(1, epoch, str(tmp_path))))  # cache: same
    assert len({pool_slot(1, e, i, 3) for e in range(3) for i in range(6)}) == 3  # every member is used
    other = masks(2, 0)  # another seed: another pool
    assert not any(np.array_equal(m, p) for m in other for p in pool)
    saved = np.load(mask_pool_file(tmp_path, (16, 16), 2.0, 1, 3))
    assert saved.dtype == bool and np.array_equal(saved, np.stack(pool))
    mask_pool.cache_clear()  # a new process: reads the file rather than drawing
    np.save(mask_pool_file(tmp_path, (16, 16), 2.0, 1, 3), ~saved)
    assert np.array_equal(masks(1, 0, str(tmp_path))[0], ~pool[pool_slot(1, 0, 0, 3)])
    mask_pool.cache_clear()
