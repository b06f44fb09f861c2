"""Summary statistics with one rule each: mean ± standard error, and the interval of a comparison of two
methods over seeds and test samples (two-level paired bootstrap, with a seed-level t-interval beside it)."""
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


def _as_seed_sample(values, name: str) -> np.ndarray:
    """(seeds, samples) float array from a list per seed of per-sample values (or a (samples,) array: one seed)."""
    array = np.asarray(values, dtype=float)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{name} must be (seeds, samples) per-sample values, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} holds non-finite values")
    return array


def _paired_arrays(a, b) -> tuple[np.ndarray, np.ndarray]:
    """a, b as (seeds, samples) arrays of the same shape; a method with one seed (a deterministic baseline)
    is repeated for every seed of the other."""
    a, b = _as_seed_sample(a, "a"), _as_seed_sample(b, "b")
    if a.shape[0] == 1 and b.shape[0] > 1:
        a = np.repeat(a, b.shape[0], axis=0)
    if b.shape[0] == 1 and a.shape[0] > 1:
        b = np.repeat(b, a.shape[0], axis=0)
    if a.shape != b.shape:
        raise ValueError(f"paired comparison needs the same seeds and test samples, got {a.shape} and {b.shape}")
    return a, b


def comparison(mean_a, mean_b, statistic: str):
    """The statistic of a comparison of A against B from their means (arrays broadcast):
        "ratio":      mean(a) / mean(b)    (errors: < 1 means A is better)
        "difference": mean(a) − mean(b)    (PSNR: > 0 means A is better)"""
    if statistic == "ratio":
        return mean_a / mean_b
    if statistic == "difference":
        return mean_a - mean_b
    raise ValueError(f"statistic must be 'ratio' or 'difference', got {statistic!r}")


def small_sample_factor(level: float, n: int) -> float:
    """How much wider than the plain percentile interval a bootstrap over `n` top-level units must be.

    A percentile bootstrap over n units is too narrow for small n: it sees the plug-in variance
    ((n − 1)/n of the unbiased one) and has normal instead of Student-t tails, so over 5 seeds its nominal
    95 % interval covers the truth ≈ 85 % of the time (tests/common/test_stats.py). The factor
    √(n / (n − 1)) · t_{n−1}(1 − α/2) / z(1 − α/2) — the one Hesterberg's expanded percentile interval
    uses (The American Statistician 69(4), 2015) — widens the interval's two arms around the estimate to
    the t-interval's width while keeping the bootstrap's asymmetry. 1 for n < 2 (no seed spread to see)."""
    from scipy import stats as scipy_stats

    if n < 2:
        return 1.0
    return float(math.sqrt(n / (n - 1)) * scipy_stats.t.ppf(0.5 + level / 2, n - 1) / scipy_stats.norm.ppf(0.5 + level / 2))


def two_level_bootstrap(a, b, statistic: str = "ratio", n_resamples: int = 10_000, seed: int = 0,
                        level: float = 0.95) -> dict:
    """Two-level paired bootstrap interval of a comparison of method A against method B.

    a, b: (seeds, test samples) per-sample values (a list per seed, or one seed as a (samples,) array),
    paired element by element: row k of both is the same seed index, column j the same test sample. A
    method with a single row (a deterministic baseline) is paired with every seed of the other.
    Each resample draws seeds with replacement, then, within each drawn seed, its test samples with
    replacement (the same draw for A and B), and computes the statistic of the resampled means
    (`comparison`). Training noise (seed to seed) and test-set noise both enter the interval; resampling
    (seed, sample) pairs as if independent ignores the first (../shared/reference/protocol.md). The arms of
    the percentile interval are widened by `small_sample_factor` over the seeds (a plain percentile
    interval over 5 seeds covers only ≈ 85 %); a ratio's arms are widened on the log scale (positive bounds).
    Returns {"statistic", "estimate", "low", "high", "level", "n_seeds", "n_samples", "n_resamples",
    "method": "two-level bootstrap"}.
    """
    a, b = _paired_arrays(a, b)
    n_seeds, n_samples = a.shape
    rng = np.random.default_rng(seed)
    values = np.empty(n_resamples)
    chunk = max(1, 2_000_000 // (n_seeds * n_samples))  # bounded memory for large test sets
    for start in range(0, n_resamples, chunk):
        r = min(chunk, n_resamples - start)
        seeds = rng.integers(0, n_seeds, size=(r, n_seeds, 1))
        samples = rng.integers(0, n_samples, size=(r, n_seeds, n_samples))
        values[start:start + r] = comparison(a[seeds, samples].mean(axis=(1, 2)), b[seeds, samples].mean(axis=(1, 2)),
                                             statistic)
    tail = (1 - level) / 2 * 100
    q_low, q_high = np.percentile(values, [tail, 100 - tail])
    estimate = float(comparison(a.mean(), b.mean(), statistic))
    factor = small_sample_factor(level, n_seeds)
    if statistic == "ratio" and estimate > 0 and q_low > 0:
        # widened on the log scale, where a ratio's sampling distribution is closer to symmetric: the
        # bounds stay positive however few the seeds (on the linear scale a 2-seed interval goes below 0)
        centre = math.log(estimate)
        low = math.exp(centre - factor * (centre - math.log(q_low)))
        high = math.exp(centre + factor * (math.log(q_high) - centre))
    else:
        low, high = estimate - factor * (estimate - q_low), estimate + factor * (q_high - estimate)
    return {"method": "two-level bootstrap", "statistic": statistic, "small_sample_factor": factor,
            "estimate": estimate, "low": float(low), "high": float(high),
            "level": level, "n_seeds": int(n_seeds), "n_samples": int(n_samples), "n_resamples": n_resamples}


def seed_t_interval(a, b, statistic: str = "ratio", level: float = 0.95) -> dict:
    """Seed-level paired t-interval: the statistic per seed (its test-sample means), then mean ± t·s.e.
    over seeds with n_seeds − 1 degrees of freedom. The cross-check of `two_level_bootstrap`; undefined
    (NaN bounds) with one seed. Returns {"method": "seed t-interval", "estimate", "low", "high", "level",
    "n_seeds", "per_seed"}."""
    from scipy import stats as scipy_stats

    a, b = _paired_arrays(a, b)
    per_seed = comparison(a.mean(axis=1), b.mean(axis=1), statistic)
    mean, se = mean_se(per_seed)  # one seed: NaN s.e., so NaN bounds
    half = float(scipy_stats.t.ppf(0.5 + level / 2, per_seed.size - 1)) * se if per_seed.size > 1 else math.nan
    return {"method": "seed t-interval", "statistic": statistic, "estimate": mean, "low": mean - half,
            "high": mean + half, "level": level, "n_seeds": int(per_seed.size),
            "per_seed": [float(v) for v in per_seed]}


def compare_methods(a, b, statistic: str = "ratio", n_resamples: int = 10_000, seed: int = 0,
                    level: float = 0.95) -> dict:
    """The one comparison routine of every report: the two-level bootstrap interval (the result) with the
    seed-level t-interval beside it ("t_interval"), both at `level`."""
    result = two_level_bootstrap(a, b, statistic, n_resamples, seed, level)
    result["t_interval"] = seed_t_interval(a, b, statistic, level)
    return result


def format_interval(result: dict, digits: int = 3) -> str:
    """"0.984 [0.954, 1.008]" (estimate and bounds of a `compare_methods` / `two_level_bootstrap` result);
    differences get a sign ("+0.56 [−0.03, +1.19]")."""
    sign = "+" if result.get("statistic") == "difference" else ""
    return (f"{result['estimate']:{sign}.{digits}f} [{result['low']:{sign}.{digits}f}, "
            f"{result['high']:{sign}.{digits}f}]")
