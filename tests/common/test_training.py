"""The shared training engine on a toy task whose training and validation data disagree."""
import pytest
import torch
from torch import nn

from common.checkpoints import load_checkpoint
from common.errors import CheckpointError, ConfigError, NonFiniteError, RunExistsError
from common.training import RunSettings, read_metrics, train_loop


class ToyTask:
    """y = w·x with one weight: the training data say w = 1, the validation data say w = −1, so the
    training loss falls every epoch while the validation error rises."""
    name, metric_name, loss_reduction, transform_types = "toy", "val_mse", "mean", ()

    def __init__(self, validation=True, nan_at=None):
        g = torch.Generator().manual_seed(0)
        self.x = torch.randn(12, 1, generator=g)
        self.n_train, self.has_validation, self.nan_at = 12, validation, nan_at

    def build_model(self):
        model = nn.Linear(1, 1, bias=False)
        nn.init.zeros_(model.weight)
        return model

    def batches(self, steps, epoch, device):
        for indices in steps:
            yield epoch, self.x[indices]

    def per_sample_loss(self, model, batch):
        epoch, x = batch
        loss = (model(x) - x).pow(2).squeeze(1)
        return loss * float("nan") if epoch == self.nan_at else loss

    def validate(self, model, device):
        with torch.no_grad():
            return float((model(self.x) + self.x).pow(2).mean())

    def describe(self, model):
        return {"parameters": sum(p.numel() for p in model.parameters())}


SETTINGS = dict(epochs=4, batch_size=4, lr=0.1, device="cpu", progress=False)


def test_best_checkpoint_follows_validation_not_training(tmp_path):
    run = train_loop(ToyTask(), RunSettings(**SETTINGS), tmp_path / "run", {"lr": 0.1})
    records = read_metrics(run)
    assert [r["epoch"] for r in records] == [0, 1, 2, 3]
    train_losses, val = [r["train_loss"] for r in records], [r["val_mse"] for r in records]
    assert train_losses == sorted(train_losses, reverse=True) and val == sorted(val)  # they disagree
    assert load_checkpoint(run / "best.pt")["epoch"] == 0 and load_checkpoint(run / "last.pt")["epoch"] == 3
    without = train_loop(ToyTask(validation=False), RunSettings(**SETTINGS), tmp_path / "noval", {"lr": 0.1})
    assert load_checkpoint(without / "best.pt")["epoch"] == 3  # no validation data: the training loss decides


def test_non_finite_loss_raises_naming_epoch_and_batch(tmp_path):
    with pytest.raises(NonFiniteError, match="epoch 2, batch 0"):
        train_loop(ToyTask(nan_at=2), RunSettings(**SETTINGS), tmp_path / "run", {})
    assert load_checkpoint(tmp_path / "run" / "last.pt")["epoch"] == 1
    assert len(read_metrics(tmp_path / "run")) == 2


def test_refusals(tmp_path):
    train_loop(ToyTask(), RunSettings(**{**SETTINGS, "epochs": 1}), tmp_path / "run", {})
    with pytest.raises(RunExistsError, match="already holds a run"):
        train_loop(ToyTask(), RunSettings(**SETTINGS), tmp_path / "run", {})
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"lr": -1.0}, {"weight_decay": -1.0}, {"stop_after": 0}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            train_loop(ToyTask(), RunSettings(**{**SETTINGS, **bad}), tmp_path / "new", {})
        assert not (tmp_path / "new").exists()


def test_transform_parameters_get_transform_lr_and_no_weight_decay():
    from common.training import parameter_groups

    model = nn.Sequential(nn.Linear(2, 2), nn.Conv1d(1, 1, 1))
    groups = {g["name"]: g for g in parameter_groups(model, (nn.Conv1d,), 1e-3, 1e-4, 1e-2)}
    assert groups["transform"]["lr"] == 1e-4 and groups["transform"]["weight_decay"] == 0.0
    assert groups["network"]["weight_decay"] == 1e-2
    assert {id(p) for p in groups["transform"]["params"]} == {id(p) for p in model[1].parameters()}


def test_checkpoints_of_another_format_version_are_refused(tmp_path):
    """A checkpoint from before the unit-modulus transform parametrisation (no format_version) would load
    its learned transforms with the wrong scale: refused, naming the version; ours round-trip."""
    from common.checkpoints import FORMAT_VERSION, save_checkpoint

    torch.save({"model": {"w": torch.ones(2)}, "config": {"lr": 1e-3}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="checkpoint format 1"):
        load_checkpoint(tmp_path / "old.pt")
    save_checkpoint({"model": {"w": torch.ones(2)}}, tmp_path / "new.pt")
    assert load_checkpoint(tmp_path / "new.pt")["format_version"] == FORMAT_VERSION


def test_a_torn_last_metrics_line_is_dropped_on_resume_and_a_damaged_one_named(tmp_path):
    """A kill (or a snapshot copy) in the middle of the per-epoch append leaves half a JSON line at the end:
    reading leaves it out, the resumed run writes that epoch again and ends as the uninterrupted run did."""
    full = read_metrics(train_loop(ToyTask(), RunSettings(**SETTINGS), tmp_path / "full", {}))
    run = train_loop(ToyTask(), RunSettings(**{**SETTINGS, "stop_after": 2}), tmp_path / "run", {})
    path = run / "metrics.jsonl"
    with open(path, "a") as handle:
        handle.write('{"epoch": 2, "train_lo')  # the torn append of epoch 2
    assert [r["epoch"] for r in read_metrics(run)] == [0, 1]
    train_loop(ToyTask(), RunSettings(**{**SETTINGS, "resume": True}), run, {})
    strip = lambda records: [{k: v for k, v in r.items() if k != "seconds"} for r in records]  # noqa: E731
    assert strip(read_metrics(run)) == strip(full)
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], "not json", *lines[1:]]) + "\n")
    with pytest.raises(ConfigError, match="line 2 is not a JSON record"):
        read_metrics(run)
