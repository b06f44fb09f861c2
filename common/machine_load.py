"""Machine load around a benchmark: recorded before and after, and a CPU result refused when it was shared.

A CPU timing taken while other processes compete for the cores measures the scheduler, not the code (the
committed cpu_steps result once said 1.05× at a 1-minute load of 8.6 on 2 cores, 1.28–1.32× idle). So
every timing benchmark (`bench monarch|kernels|steps|data|mri-data|mri`) on the CPU refuses to start, and
refuses to write, when the 1-minute load average exceeds the core count (os.cpu_count()); `--allow-loaded`
writes anyway and labels the result LOADED (markdown title and the JSON's environment.load.loaded). CUDA results only record the load.

    guard = LoadGuard(device, allow_loaded)      # samples the load; may refuse before any measurement
    ... measure ...
    env["load"] = guard.finish()                 # samples again; may refuse before anything is written
    title += guard.label()                       # " — LOADED (…)" or ""
"""
from __future__ import annotations

import os

import torch

from common.errors import UserError


class MachineLoadedError(UserError, RuntimeError):
    """A CPU benchmark refused because other processes were using the cores."""


def load_1min() -> float | None:
    """The 1-minute load average, or None where the platform has none."""
    try:
        return float(os.getloadavg()[0])
    except (AttributeError, OSError):
        return None


class LoadGuard:
    """Load before/after one benchmark run on `device`; refuses CPU results taken on a loaded machine."""

    def __init__(self, device: torch.device, allow_loaded: bool = False, what: str = "benchmark"):
        self.cpu = torch.device(device).type == "cpu"
        self.allow_loaded, self.what = allow_loaded, what
        self.cores = os.cpu_count() or 1
        self.before = load_1min()
        self.after = None
        self._check(self.before, "before it started")

    def _over(self, load: float | None) -> bool:
        return load is not None and load > self.cores

    def _check(self, load: float | None, when: str) -> None:
        if self.cpu and not self.allow_loaded and self._over(load):
            raise MachineLoadedError(
                f"{self.what}: the 1-minute load average was {load:.2f} on {self.cores} cores {when}; a CPU timing "
                "on a shared machine measures the other processes, so no result was written",
                hint="rerun when the machine is idle, or pass --allow-loaded to write a result labelled LOADED")

    def finish(self) -> dict:
        """Sample the load again; the record for the result's environment (raises when refused)."""
        self.after = load_1min()
        self._check(self.after, "when it ended")
        return {"load_1min_before": self.before, "load_1min_after": self.after, "cores": self.cores,
                "loaded": self.loaded(), "allow_loaded": self.allow_loaded}

    def loaded(self) -> bool:
        """A CPU result taken while the load exceeded the core count (before or after)."""
        return self.cpu and (self._over(self.before) or self._over(self.after))

    def label(self) -> str:
        """' — LOADED (…)' for a result measured on a loaded machine, else ''."""
        if not self.loaded():
            return ""
        loads = ", ".join(f"{v:.2f}" for v in (self.before, self.after) if v is not None)
        return f" — LOADED (1-minute load {loads} on {self.cores} cores: times inflated, written with --allow-loaded)"


def load_sentence(record: dict | None) -> str:
    """"1-minute load 0.87 before, 0.96 after, on 2 cores" from LoadGuard.finish()'s record ("" without one)."""
    if not record:
        return ""
    fmt = lambda v: "unknown" if v is None else f"{v:.2f}"  # noqa: E731
    return (f"1-minute load {fmt(record.get('load_1min_before'))} before, {fmt(record.get('load_1min_after'))} "
            f"after, on {record.get('cores')} cores")
