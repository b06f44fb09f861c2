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


@pytest.mark.parametrize("kind", ["cosine", "step"])
def test_the_schedules_lr_factor_is_the_schedulers_own(kind):
    import torch

    from common.study.spec import Schedule

    schedule = Schedule(kind=kind, step_epochs=7 if kind == "step" else None, gamma=0.5)
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.3)
    scheduler = (torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, 40) if kind == "cosine"
                 else torch.optim.lr_scheduler.StepLR(optimizer, 7, 0.5))
    for epoch in range(1, 41):
        optimizer.step()
        scheduler.step()
        assert scheduler.get_last_lr()[0] / 0.3 == pytest.approx(schedule.lr_factor(epoch, 40), abs=1e-12), epoch


def test_a_plateau_at_a_high_learning_rate_is_not_convergence():
    """Under a decaying schedule the rule waits until the rate has decayed to min_lr_factor of its peak:
    a flat curve converges at epoch 8 with a constant rate, at the first epoch with cos-factor ≤ 0.1 under
    cosine over 400 epochs, and at epoch 200 under ×0.5 every 50 (0.5⁴ = 0.0625)."""
    from common.study.convergence import finished
    from common.study.spec import Schedule

    flat = [1.0] * 400
    assert status(flat, RULE, Schedule(kind="constant"))["stop_epoch"] == 8 == status(flat, RULE)["stop_epoch"]
    first = next(e for e in range(1, 401) if 0.5 * (1 + math.cos(math.pi * e / 400)) <= 0.1)
    assert 300 < first < 400 and status(flat, RULE, Schedule(kind="cosine"))["stop_epoch"] == first
    assert status(flat, RULE, Schedule(kind="step", step_epochs=50))["stop_epoch"] == 200
    # a run evaluated after a stop the rule no longer makes is not finished; one at the cap always is
    assert not finished(flat[:20], RULE, Schedule()) and finished(flat[:20], RULE)
    assert finished([1 / (e + 1) for e in range(400)], RULE, Schedule())
    # a run without validation has no curve: it is done at the cap, not before
    assert finished([], RULE, Schedule(), epochs=400) and not finished([], RULE, Schedule(), epochs=399)
