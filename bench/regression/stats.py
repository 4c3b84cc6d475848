"""Is a difference between baseline and current more than noise? One test per kind of evidence.

Every test returns a two-sided p-value and a (1 - alpha) confidence interval of the relative
change (current / baseline - 1), so that a row can show how large the change may really be.
Random resampling is seeded by the caller: the same inputs give the same verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 1000


@dataclass(frozen=True)
class Evidence:
    p_value: float | None  # None: no test possible (too few values)
    ci: tuple[float, float] | None  # relative change, e.g. (-0.25, -0.15)
    method: str
    # the interval holds the run-to-run noise (a test over repeats), not only the noise
    # between requests of the same runs
    over_runs: bool = False


def _bootstrap(values: np.ndarray, q: float, rng: np.random.Generator) -> np.ndarray:
    """The q-quantile of BOOTSTRAP_RESAMPLES resamples (with replacement) of values."""
    idx = rng.integers(0, len(values), size=(BOOTSTRAP_RESAMPLES, len(values)))
    return np.quantile(values[idx], q, axis=1)


def _bootstrap_ratio(base, cur, q, alpha, seed) -> tuple[np.ndarray, tuple[float, float]]:
    rng = np.random.default_rng(seed)
    b = _bootstrap(np.asarray(base, dtype=np.float64), q, rng)
    c = _bootstrap(np.asarray(cur, dtype=np.float64), q, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = c / b
    ratio = ratio[np.isfinite(ratio)]
    if len(ratio) == 0:
        return ratio, (math.nan, math.nan)
    lo, hi = np.quantile(ratio, [alpha / 2, 1 - alpha / 2])
    return ratio, (float(lo - 1), float(hi - 1))


def median_shift(base: np.ndarray, cur: np.ndarray, *, alpha: float, seed: int) -> Evidence:
    """Mann-Whitney U (two-sided) on per-request values: does one side tend to be larger?
    Rank-based, so a heavy tail or a few stalls cannot fake or hide a shift. CI: bootstrap
    of the ratio of medians."""
    if len(base) < 2 or len(cur) < 2:
        return Evidence(None, None, "too few values")
    p = float(stats.mannwhitneyu(cur, base, alternative="two-sided").pvalue)
    _, ci = _bootstrap_ratio(base, cur, 0.5, alpha, seed)
    return Evidence(1.0 if math.isnan(p) else p, ci, "Mann-Whitney U")


def quantile_shift(base: np.ndarray, cur: np.ndarray, q: float, *, alpha: float, seed: int) -> Evidence:
    """Bootstrap of the ratio of q-quantiles (tails, where a rank test says little). p: twice
    the share of resampled ratios on the far side of 1."""
    if len(base) < 2 or len(cur) < 2:
        return Evidence(None, None, "too few values")
    ratio, ci = _bootstrap_ratio(base, cur, q, alpha, seed)
    if len(ratio) == 0:
        return Evidence(None, None, "bootstrap: baseline quantile is 0")
    p = min(1.0, 2 * min(float(np.mean(ratio <= 1)), float(np.mean(ratio >= 1))))
    return Evidence(p, ci, f"bootstrap p{q * 100:g}")


def mean_shift(base: list[float], cur: list[float], *, alpha: float) -> Evidence:
    """Welch's t-test over per-run values (repeats): one number per run, so the run-to-run
    noise is what counts. Needs at least 2 runs on each side.

    Positive values (throughputs, latency percentiles) are compared as logarithms: the change
    is a ratio, and the interval of the ratio of geometric means, exp(CI) - 1, never passes
    -100%, where a difference of means divided by the baseline's does with 2-3 noisy repeats
    (an interval of "-142% to -36%" for a throughput). Zero or negative values: plain means."""
    if len(base) < 2 or len(cur) < 2:
        return Evidence(None, None, f"no test: {len(base)} vs {len(cur)} runs (needs 2+ each)")
    b, c = np.asarray(base, dtype=np.float64), np.asarray(cur, dtype=np.float64)
    mean_b = float(b.mean())
    if b.std() == 0 and c.std() == 0:
        # no run-to-run noise at all: any difference is real
        p = 1.0 if c.mean() == mean_b else 0.0
        change = float(c.mean() / mean_b - 1) if mean_b else math.nan
        return Evidence(p, (change, change), "exact (no spread)", over_runs=True)
    if b.min() > 0 and c.min() > 0:
        result = stats.ttest_ind(np.log(c), np.log(b), equal_var=False)
        low, high = result.confidence_interval(1 - alpha)
        return Evidence(float(result.pvalue), (math.expm1(low), math.expm1(high)), "Welch t", over_runs=True)
    result = stats.ttest_ind(c, b, equal_var=False)
    low, high = result.confidence_interval(1 - alpha)
    ci = (float(low / mean_b), float(high / mean_b)) if mean_b else None
    return Evidence(float(result.pvalue), ci, "Welch t", over_runs=ci is not None)
