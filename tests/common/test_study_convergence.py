"""common.study.convergence: the stated rule (< 1 % gain over the last 25 % of epochs) on analytic curves,
and a train_loop run that stops by it."""
import math

import pytest

from common.study.convergence import converged, relative_gain, status, stopping_callback
from common.study.spec import Stopping

RULE = Stopping(max_epochs=400, min_epochs=8, window=0.25, min_gain=0.01)


def test_a_power_law_curve_converges_where_the_rule_says():
    curve = [1 / (e + 1) for e in range(400)]  # gain over the last quarter: 1 − 3/4 = 25 % forever
    assert status(curve, RULE)["converged"] is False
    exponential = [0.1 + math.exp(-e / 10) for e in range(400)]
    result = status(exponential, RULE)
    assert result["converged"] and 8 <= result["stop_epoch"] < 400
    e = result["stop_epoch"]
    assert relative_gain(exponential[:e], 0.25) < 0.01 <= relative_gain(exponential[:e - 1], 0.25)


def test_too_few_epochs_never_converge_and_plateaus_do():
    assert not converged([1.0] * 7, RULE) and converged([1.0] * 8, RULE)
    assert relative_gain([1.0], 0.25) == math.inf


def test_train_loop_stops_when_the_rule_holds(tmp_path):
    import torch

    from common.training import RunSettings, read_metrics, train_loop

    class Task:
        name, metric_name, n_train, loss_reduction, has_validation = "toy", "val", 8, "mean", True
        transform_types = ()

        def build_model(self):
            return torch.nn.Linear(1, 1)

        def batches(self, steps, epoch, device):
            for idx in steps:
                x = torch.linspace(-1, 1, 8)[idx, None]
                yield x, 3 * x

        def per_sample_loss(self, model, batch):
            x, y = batch
            return ((model(x) - y) ** 2).squeeze(1)

        def validate(self, model, device):
            x = torch.linspace(-1, 1, 8)[:, None]
            with torch.no_grad():
                return float(((model(x) - 3 * x) ** 2).mean())

        def describe(self, model):
            return {}

    rule = Stopping(max_epochs=300, min_epochs=10, window=0.25, min_gain=0.01)
    train_loop(Task(), RunSettings(epochs=300, batch_size=8, lr=0.05, progress=False), tmp_path, {},
               stopping_callback("val", rule))
    values = [r["val"] for r in read_metrics(tmp_path)]
    assert 10 <= len(values) < 300 and converged(values, rule) and not converged(values[:-1], rule)
