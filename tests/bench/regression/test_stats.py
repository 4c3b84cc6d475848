"""The significance tests on synthetic samples whose truth is known."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from bench.regression.stats import mean_shift, median_shift, quantile_shift


def lognormal(seed: int, median: float, sigma: float, n: int) -> np.ndarray:
    return np.random.default_rng(seed).lognormal(np.log(median), sigma, n)


def test_median_shift_detects_a_clear_shift():
    base, cur = lognormal(1, 100, 0.2, 400), lognormal(2, 120, 0.2, 400)
    ev = median_shift(base, cur, alpha=0.01, seed=0)
    assert ev.p_value < 1e-6
    assert 0.12 < ev.ci[0] < 0.20 < ev.ci[1] < 0.28  # the true change, +20%, is inside


def test_median_shift_sees_no_shift_between_draws_of_one_distribution():
    ev = median_shift(lognormal(1, 100, 0.5, 400), lognormal(2, 100, 0.5, 400), alpha=0.01, seed=0)
    assert ev.p_value > 0.05 and ev.ci[0] < 0 < ev.ci[1]


def test_huge_variance_hides_a_real_shift_of_few_values():
    base, cur = lognormal(3, 100, 1.5, 40), lognormal(4, 140, 1.5, 40)
    ev = median_shift(base, cur, alpha=0.01, seed=0)
    assert ev.p_value > 0.01 and ev.ci[0] < 0 < ev.ci[1]


def test_tail_shift_without_a_median_shift():
    rng = np.random.default_rng(5)
    base = rng.normal(100, 5, 2000)
    cur = np.concatenate([rng.normal(100, 5, 1960), rng.normal(300, 5, 40)])  # 2% stalls
    assert median_shift(base, cur, alpha=0.01, seed=0).ci[0] < 0.01  # median barely moves
    tail = quantile_shift(base, cur, 0.99, alpha=0.01, seed=0)
    assert tail.p_value < 0.01 and tail.ci[0] > 0.5


def test_bootstrap_is_seeded():
    base, cur = lognormal(1, 100, 0.5, 300), lognormal(2, 110, 0.5, 300)
    assert quantile_shift(base, cur, 0.99, alpha=0.01, seed=7) == quantile_shift(base, cur, 0.99, alpha=0.01, seed=7)
    assert quantile_shift(base, cur, 0.99, alpha=0.01, seed=7) != quantile_shift(base, cur, 0.99, alpha=0.01, seed=8)


def test_too_few_values_give_no_test():
    assert median_shift(np.array([1.0]), np.array([1.0, 2.0]), alpha=0.01, seed=0).p_value is None
    assert quantile_shift(np.array([1.0, 2.0]), np.array([3.0]), 0.99, alpha=0.01, seed=0).p_value is None
    ev = mean_shift([100.0, 101.0, 99.0], [80.0], alpha=0.01)
    assert ev.p_value is None and "3 vs 1 runs" in ev.method


def test_welch_over_repeats():
    ev = mean_shift([1000, 1010, 990], [800, 805, 795], alpha=0.01)
    assert ev.p_value < 0.001 and ev.ci[1] < -0.15 < ev.ci[0] + 0.1
    noisy = mean_shift([1000, 1300, 700], [850, 1150, 600], alpha=0.01)
    assert noisy.p_value > 0.05  # -15% but run-to-run noise is 30%


def test_welch_interval_of_positive_values_is_a_ratio():
    # two noisy repeats a side and a large drop: the interval of the difference of means over
    # the baseline's mean reaches below -100%, which no throughput can fall to
    base, cur = [100.0, 130.0], [40.0, 70.0]
    raw = stats.ttest_ind(cur, base, equal_var=False).confidence_interval(0.95)
    assert raw.low / np.mean(base) < -1
    ev = mean_shift(base, cur, alpha=0.05)
    low, high = ev.ci
    assert -1 < low < np.mean(cur) / np.mean(base) - 1 < high  # the point change (-52%) inside
    # a value of 0 (goodput) leaves logarithms out: plain means, still a test
    zero = mean_shift([0.0, 1.0], [2.0, 3.0], alpha=0.05)
    assert zero.p_value is not None and zero.ci[1] > 1


def test_repeats_without_spread_are_exact():
    assert mean_shift([5.0, 5.0], [5.0, 5.0], alpha=0.01).p_value == 1.0
    ev = mean_shift([5.0, 5.0], [4.0, 4.0], alpha=0.01)
    assert ev.p_value == 0.0 and ev.ci == pytest.approx((-0.2, -0.2))


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(0.1, 1e4), min_size=8, max_size=60))
def test_separated_samples_are_always_significant_and_positive(values):
    # every current value above every baseline value: any resampled quantile ratio is > 1
    base = np.array(values)
    cur = base + (base.max() - base.min()) + 1.0
    mid = median_shift(base, cur, alpha=0.01, seed=1)
    tail = quantile_shift(base, cur, 0.99, alpha=0.01, seed=1)
    assert mid.p_value < 0.01 and mid.ci[0] > 0
    assert tail.p_value < 0.01 and tail.ci[0] > 0


@settings(max_examples=30, deadline=None)
@given(values=st.lists(st.floats(0.1, 1e4), min_size=2, max_size=60))
def test_identical_samples_are_never_significant(values):
    base = np.array(values)
    assert median_shift(base, base.copy(), alpha=0.01, seed=0).p_value > 0.5
    assert quantile_shift(base, base.copy(), 0.99, alpha=0.01, seed=0).p_value >= 0.01


def test_only_tests_over_repeats_claim_the_run_to_run_noise():
    # what lets a verdict call a change shown no worse: an interval over requests of the same
    # runs does not hold a slow run's worth of noise
    rng = np.random.default_rng(0)
    requests = rng.normal(10, 1, 200), rng.normal(10, 1, 200)
    assert not quantile_shift(*requests, 0.99, alpha=0.05, seed=1).over_runs
    assert not median_shift(*requests, alpha=0.05, seed=1).over_runs
    assert mean_shift([10.0, 10.2, 9.9], [10.1, 10.0, 10.3], alpha=0.05).over_runs
    assert mean_shift([10.0, 10.0], [11.0, 11.0], alpha=0.05).over_runs  # exact: no spread at all
    assert not mean_shift([10.0], [11.0, 11.5], alpha=0.05).over_runs  # one run: no test, no interval
