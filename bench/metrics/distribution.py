"""Summary statistics of raw values, the way every distribution in summary.json is written."""

from __future__ import annotations

import numpy as np

PERCENTILES = (50, 90, 95, 99, 99.9)


def distribution(values) -> dict | None:
    """{n, mean, std, min, max, p50, p90, p95, p99, p99.9} of raw values; None when empty.

    Percentiles use numpy's default linear interpolation on the raw values (never buckets);
    std is the population standard deviation (ddof=0), so one value gives 0, not NaN.
    """
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        return None
    if not np.isfinite(a).all():
        raise ValueError(f"distribution: values must be finite, found {a[~np.isfinite(a)][0]!r}")
    out = {
        "n": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std()),
        "min": float(a.min()),
        "max": float(a.max()),
    }
    for q, v in zip(PERCENTILES, np.percentile(a, PERCENTILES)):
        out[f"p{q:g}"] = float(v)
    return out
