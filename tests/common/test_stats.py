"""common.stats: the two-level paired bootstrap covers the truth when the seed effect dominates (where
the superseded (seed, sample)-pair bootstrap does not), the seed-level t-interval equals scipy's, and
the routines refuse what they cannot pair."""
import numpy as np
import pytest
from scipy import stats as scipy_stats

from common.stats import compare_methods, format_interval, seed_t_interval, small_sample_factor, two_level_bootstrap


def simulated_experiment(rng, seeds=5, samples=40, seed_sd=0.06, true_ratio=0.95):
    """(a, b, true ratio): per-sample errors of two methods over the same test samples, where each seed
    scales a method's errors by its own factor (training noise) — the effect that dominates here."""
    difficulty = rng.lognormal(0, 0.3, samples)               # shared by both methods: the pairing
    a = true_ratio * difficulty * (1 + rng.normal(0, seed_sd, (seeds, 1))) + rng.normal(0, 0.01, (seeds, samples))
    b = difficulty * (1 + rng.normal(0, seed_sd, (seeds, 1))) + rng.normal(0, 0.01, (seeds, samples))
    return a, b, true_ratio


def pair_bootstrap(a, b, n_resamples, seed):
    """The superseded interval: (seed, sample) pairs resampled as if independent (for the comparison only)."""
    a, b = a.ravel(), b.ravel()
    picks = np.random.default_rng(seed).integers(0, a.size, size=(n_resamples, a.size))
    return np.percentile(a[picks].mean(axis=1) / b[picks].mean(axis=1), [2.5, 97.5])


def test_two_level_bootstrap_covers_the_true_ratio_when_the_seed_effect_dominates():
    rng = np.random.default_rng(0)
    covered = old_covered = 0
    for i in range(200):
        a, b, truth = simulated_experiment(rng)
        result = two_level_bootstrap(a, b, "ratio", n_resamples=2000, seed=i)
        covered += result["low"] <= truth <= result["high"]
        low, high = pair_bootstrap(a, b, 2000, i)
        old_covered += low <= truth <= high
    print(f"coverage of the nominal 95 % interval over 200 experiments: two-level {covered / 200:.3f}, "
          f"(seed, sample)-pair bootstrap {old_covered / 200:.3f}")
    assert covered / 200 >= 0.93
    assert old_covered / 200 < 0.8  # the superseded interval ignores training noise


def test_t_interval_is_scipys_on_the_per_seed_statistic():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(1, 2, (6, 30)), rng.uniform(1, 2, (6, 30))
    result = seed_t_interval(a, b, "difference")
    per_seed = a.mean(axis=1) - b.mean(axis=1)
    low, high = scipy_stats.t.interval(0.95, 5, loc=per_seed.mean(), scale=scipy_stats.sem(per_seed))
    assert result["low"] == pytest.approx(low) and result["high"] == pytest.approx(high)
    assert result["per_seed"] == pytest.approx(per_seed.tolist())


def test_identical_methods_give_an_interval_around_the_null_and_a_shift_is_found():
    rng = np.random.default_rng(2)
    a = rng.normal(30, 2, (5, 20))
    same = compare_methods(a, a.copy(), "difference", n_resamples=1000)
    assert same["estimate"] == 0 and same["low"] == 0 == same["high"]  # every resample pairs equal values
    shifted = compare_methods(a + 1 + rng.normal(0, 0.05, (5, 1)), a, "difference", n_resamples=1000)
    assert 0.8 < shifted["low"] < 1 < shifted["high"] < 1.2
    assert shifted["t_interval"]["low"] < 1 < shifted["t_interval"]["high"]
    assert format_interval(shifted, 2).startswith("+1.0")


def test_a_deterministic_baseline_is_paired_with_every_seed():
    rng = np.random.default_rng(3)
    learned, classical = rng.normal(35, 1, (5, 10)), rng.normal(33, 1, 10)
    result = compare_methods(learned, classical, "difference", n_resamples=500)
    assert (result["n_seeds"], result["n_samples"]) == (5, 10)
    assert result["estimate"] == pytest.approx(learned.mean() - classical.mean())


def test_small_sample_factor_widens_few_seeds_and_vanishes_with_many():
    assert small_sample_factor(0.95, 1) == 1.0
    assert small_sample_factor(0.95, 5) == pytest.approx(np.sqrt(5 / 4) * scipy_stats.t.ppf(0.975, 4) / 1.959964)
    assert 1 < small_sample_factor(0.95, 1000) < 1.005


def test_unpairable_inputs_are_refused():
    with pytest.raises(ValueError, match="same seeds and test samples"):
        two_level_bootstrap(np.ones((3, 4)), np.ones((3, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        two_level_bootstrap(np.array([1.0, np.nan]), np.ones(2))
    with pytest.raises(ValueError, match="statistic"):
        two_level_bootstrap(np.ones((2, 2)), np.ones((2, 2)), "product")


def test_ratio_interval_stays_positive_with_few_seeds_and_contains_the_estimate():
    """With 2 seeds the small-sample factor is ≈ 9 (t with 1 degree of freedom): widened on the linear
    scale a noisy ratio's lower bound would fall below 0, which no ratio of positive errors can be."""
    rng = np.random.default_rng(3)
    a = rng.lognormal(0.0, 1.0, size=(2, 16)) * np.array([[0.2], [3.0]])  # two very different seeds
    b = rng.lognormal(0.0, 1.0, size=(2, 16))
    result = two_level_bootstrap(a, b, "ratio", n_resamples=2000)
    assert 0 < result["low"] < result["estimate"] < result["high"]
    assert result["small_sample_factor"] > 5
