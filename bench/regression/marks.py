"""How one row of a verdict is marked, from its change, its significance and its interval.

    worse / better           significant (p < alpha; counters: any change) AND past the
                             metric's threshold, in the bad / good direction; worse is a
                             regression
    within threshold         otherwise, when the interval excludes any change past the
                             threshold in the bad direction: shown no worse than the
                             threshold (non-inferiority); not a regression
    no significant change    otherwise: inside the noise, or smaller than the threshold
    not comparable           set by the verdict before any judging: the runs measured
                             different things, or one side has no value

Marks are plain strings, so a DataFrame of rows filters on them: df[df.mark == WITHIN_THRESHOLD].
"""

from __future__ import annotations

from bench.regression.rules import Metric

WORSE = "worse"
BETTER = "better"
NO_SIGNIFICANT_CHANGE = "no significant change"
WITHIN_THRESHOLD = "within threshold"
NOT_COMPARABLE = "not comparable"


def judge(metric: Metric, change: float, significant: bool, threshold: float,
          ci: tuple[float, float] | None) -> tuple[str, bool]:
    """(mark, is a regression). ci: None when the interval cannot bound the change (see
    shown_within), e.g. when it misses run-to-run noise."""
    if not significant or abs(change) <= threshold:
        if shown_within(metric, ci, threshold):
            return WITHIN_THRESHOLD, False
        return NO_SIGNIFICANT_CHANGE, False
    if metric.better == "none":
        return WORSE, True
    worse = change > 0 if metric.better == "lower" else change < 0
    return (WORSE, True) if worse else (BETTER, False)


def shown_within(metric: Metric, ci: tuple[float, float] | None, threshold: float) -> bool:
    """Non-inferiority: the CI's unfavourable end lies within the threshold. The interval is
    two-sided (1 - alpha), so this one-sided claim holds at alpha / 2: conservative, and more
    so for latencies with repeats, whose CI spans the per-request and over-runs intervals.
    Counters are exact (no interval) and a metric with no better direction has no bad one."""
    if ci is None or metric.kind == "counter" or metric.better == "none":
        return False
    # a NaN end (a bootstrap with no finite ratio) fails these comparisons: nothing shown
    if metric.better == "lower":
        return ci[1] <= threshold
    return ci[0] >= -threshold
