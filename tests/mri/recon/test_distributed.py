"""`run.py mri train` under torchrun (2 CPU processes, gloo) equals a single-process run."""
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from common.checkpoints import load_checkpoint
from common.training import rank_batches
from mri.recon.training import TrainConfig, train

# 3 scans × 3 slices = 9 training slices in global batches of 6: steps of 6 and 3 slices; the last one
# splits 2 / 1 over the ranks, so only weighting each rank's mean loss by its share gives the global mean.
OPTIONS = dict(model="msense", scale="tiny", acceleration=2.0, n_train_scans=3, epochs=2, batch_size=6, lr=1e-2,
               transform_lr=1e-2, masks="random", seed=3, device="cpu")
RUN_FILES = {"config.json", "last.pt", "best.pt", "metrics.jsonl"}


def _metrics(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_rank_batches_split_every_global_batch():
    single = rank_batches(9, 4, seed=3, epoch=1)
    shards = [rank_batches(9, 4, seed=3, epoch=1, rank=r, world=2) for r in range(2)]
    assert [n for _, n, _ in single] == [4, 4, 1] and sorted(sum((b for b, _, _ in single), [])) == list(range(9))
    for step, (batch, _, n_global) in enumerate(single):
        parts = [s[step] for s in shards]
        real = [i for idx, n_local, _ in parts for i in idx[:n_local]]
        assert sorted(real) == sorted(batch) and all(p[2] == n_global for p in parts)
    assert shards[1][-1][1] == 0 and len(shards[1][-1][0]) == 1  # empty share: one zero-weight slice


def test_two_process_gloo_equals_single_process(scan_dir, tmp_path):
    single = train(TrainConfig(data_dir=str(scan_dir), out_dir=str(tmp_path / "single"), run_name="run",
                               progress=False, **OPTIONS))
    o = OPTIONS
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "run.py",
               "mri", "train", "--data", str(scan_dir), "--out", str(tmp_path / "ddp"), "--run-name", "run", "--quiet",
               "--model", o["model"], "--scale", o["scale"], "--acceleration", str(o["acceleration"]),
               "--n-train-scans", str(o["n_train_scans"]), "--epochs", str(o["epochs"]),
               "--batch-size", str(o["batch_size"]), "--lr", str(o["lr"]), "--transform-lr", str(o["transform_lr"]),
               "--masks", o["masks"], "--seed", str(o["seed"]), "--device", o["device"]]
    root = Path(__file__).resolve().parents[3]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(command, env=env, cwd=Path(__file__).resolve().parents[3], timeout=120,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    # one run folder, written once (rank 0): no second set, no leftover temporary files, one line per epoch
    assert [p.name for p in (tmp_path / "ddp").iterdir()] == ["run"]
    ddp = tmp_path / "ddp" / "run"
    assert {p.name for p in ddp.iterdir()} == RUN_FILES
    assert [m["epoch"] for m in _metrics(ddp)] == [0, 1]

    a = load_checkpoint(single / "last.pt")
    b = load_checkpoint(ddp / "last.pt")
    assert a["model"].keys() == b["model"].keys()
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=1e-4, rtol=1e-3, msg=key)
    # the same number of Adam steps (2 per epoch), and the weights moved: the loss went down
    assert {float(s["step"]) for s in b["optimizer"]["state"].values()} == {4.0}
    losses = [m["train_loss"] for m in _metrics(ddp)]
    torch.testing.assert_close(torch.tensor(losses), torch.tensor([m["train_loss"] for m in _metrics(single)]),
                               rtol=1e-4, atol=1e-6)
    assert losses[-1] < losses[0]
