"""Summary statistics with one rule each: mean ± standard error, and paired bootstrap intervals."""
from __future__ import annotations

import math

import numpy as np


def mean_se(values) -> tuple[float, float]:
    """(mean, standard error of the mean) of finite values.

    The standard error is the sample standard deviation (ddof=1) over √n. With a single value it is
    undefined and returned as NaN (never 0, which would read as certainty); `format_mean_se` prints it
    as "(n=1)". Raises ValueError on an empty list or non-finite values (a NaN result is a bug upstream).
    """
    array = np.asarray(list(values), dtype=float).ravel()
    if array.size == 0:
        raise ValueError("mean_se of an empty list")
    if not np.isfinite(array).all():
        raise ValueError(f"mean_se got non-finite values: {array[~np.isfinite(array)][:3].tolist()}")
    if array.size == 1:
        return float(array[0]), math.nan
    return float(array.mean()), float(array.std(ddof=1) / math.sqrt(array.size))


def format_mean_se(mean: float, se: float, digits: int = 4, unit: str = "") -> str:
    """"0.0123 ± 0.0004" (or "0.0123 (n=1)" when the standard error is undefined)."""
    unit = f" {unit}" if unit else ""
    if se is None or math.isnan(se):
        return f"{mean:.{digits}f}{unit} (n=1)"
    return f"{mean:.{digits}f} ± {se:.{digits}f}{unit}"


def paired_bootstrap(a, b, statistic: str = "ratio", n_resamples: int = 10_000, seed: int = 0,
                     level: float = 0.95) -> dict:
    """Paired bootstrap interval of a comparison of method A against method B.

    a, b: arrays of the same shape (seeds, test samples) — or (samples,) — holding per-sample values of
    the two methods, paired element by element (same seed index, same test sample). Each resample
    draws (seed, sample) pairs with replacement and computes the statistic:
        "ratio":      mean(a) / mean(b)    (errors: < 1 means A is better)
        "difference": mean(a) − mean(b)    (PSNR: > 0 means A is better)
    Returns {"estimate", "low", "high", "level", "n_pairs", "n_resamples", "statistic"}.
    """
    a, b = np.asarray(a, dtype=float).ravel(), np.asarray(b, dtype=float).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"paired_bootstrap needs two non-empty arrays of the same shape, got {a.shape} and {b.shape}")
    if statistic not in ("ratio", "difference"):
        raise ValueError(f"statistic must be 'ratio' or 'difference', got {statistic!r}")
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, a.size, size=(n_resamples, a.size))
    mean_a, mean_b = a[picks].mean(axis=1), b[picks].mean(axis=1)
    values = mean_a / mean_b if statistic == "ratio" else mean_a - mean_b
    estimate = a.mean() / b.mean() if statistic == "ratio" else a.mean() - b.mean()
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {"statistic": statistic, "estimate": float(estimate), "low": float(low), "high": float(high),
            "level": level, "n_pairs": int(a.size), "n_resamples": n_resamples}
