"""When a run has converged: the stopping rule a study declares (`Stopping`), applied to the validation
curve of a final run.

Rule: after epoch e (≥ `min_epochs`), the best validation metric over all e epochs improved on the best
over the first (1 − window)·e epochs by less than `min_gain` (relative) — and, under a decaying schedule
(cosine, step), the learning rate after e epochs is at most `min_lr_factor` of its peak: a plateau while
the rate is high is the noise of that rate, and the decay still to come improves it. A run stops at the
first epoch where the rule holds ("converged") or at `max_epochs` ("not converged"); the report says which.
"""
from __future__ import annotations

import math

from .spec import Schedule, Stopping


def relative_gain(values: list[float], window: float) -> float:
    """(best over the first (1 − window) of the epochs − best over all) / |best over the first part|;
    +inf when the first part is empty (too few epochs to judge)."""
    head = len(values) - max(1, math.ceil(window * len(values)))
    if head < 1:
        return math.inf
    before, now = min(values[:head]), min(values)
    return (before - now) / abs(before) if before else (0.0 if now == before else math.inf)


def converged(values: list[float], rule: Stopping, schedule: Schedule | None = None) -> bool:
    """True when the validation curve `values` (one per epoch, lower is better) meets the rule, the run
    following `schedule` planned over rule.max_epochs (None: a constant learning rate)."""
    if len(values) < rule.min_epochs:
        return False
    if schedule is not None and schedule.kind != "constant" and \
            schedule.lr_factor(len(values), rule.max_epochs) > rule.min_lr_factor:
        return False
    return relative_gain(values, rule.window) < rule.min_gain


def status(values: list[float], rule: Stopping, schedule: Schedule | None = None) -> dict:
    """{"converged", "epochs", "stop_epoch", "gain"} of a finished run's validation curve: the first epoch
    at which the rule held (None when it never did)."""
    stop = next((e for e in range(1, len(values) + 1) if converged(values[:e], rule, schedule)), None)
    return {"converged": stop is not None, "epochs": len(values), "stop_epoch": stop,
            "gain": relative_gain(values, rule.window)}


def finished(values: list[float], rule: Stopping, schedule: Schedule | None = None, epochs: int | None = None) -> bool:
    """Whether a run with this validation curve is done: it converged at its last epoch or reached the cap
    after `epochs` epochs (default len(values); a run without validation has no curve and ends at the cap)."""
    return (len(values) if epochs is None else epochs) >= rule.max_epochs or converged(values, rule, schedule)


def stopping_callback(metric: str, rule: Stopping, schedule: Schedule | None = None, history: list[float] | None = None):
    """A `common.training.train_loop` callback that ends the run once `converged` holds for the
    validation values recorded so far (`history`: the values of epochs before a resume)."""
    values = list(history or [])

    def callback(epoch: int, record: dict) -> bool:
        values.append(float(record[metric]))
        return converged(values, rule, schedule)
    return callback


__all__ = ["converged", "finished", "relative_gain", "status", "stopping_callback"]
