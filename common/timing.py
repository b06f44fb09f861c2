"""Timing of variants side by side: interleaved round by round, medians, CUDA-synchronised."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch


def _synchronizer(device) -> Callable[[], None]:
    device = torch.device(device)
    return (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)


def median_time(fn: Callable[[], object], device="cpu", repeats: int = 20, warmup: int = 3) -> float:
    """Median wall time of fn() in seconds."""
    return interleaved_times({"fn": fn}, device, repeats, warmup)["fn"]


def interleaved_times(variants: dict[str, Callable[[], object]], device="cpu", rounds: int = 20,
                      warmup: int = 3) -> dict[str, float]:
    """Median seconds per call of each variant, timed round by round (A, B, C, A, B, C, …) so that a
    change of machine load or clock during the run hits every variant alike."""
    sync = _synchronizer(device)
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    sync()
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            start = time.perf_counter()
            fn()
            sync()
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(times) for name, times in samples.items()}
