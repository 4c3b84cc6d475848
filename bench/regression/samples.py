"""Per-request raw values a verdict tests, from requests.parquet, and how a baseline keeps them.

The values are bench.metrics.latency's (METRICS.md), over ok requests: ttft_ms, tpot_ms
(requests with N >= 2), e2e_ms, and itl_ms pooled over every token gap.

A baseline keeps at most MAX_SAMPLES values per metric: above that, the values are replaced
by MAX_SAMPLES evenly spaced quantiles from the minimum to the maximum (i / (MAX_SAMPLES - 1),
linear interpolation). Any quantile of the kept values is then, to interpolation error, the
same quantile of all values (p99 included), and the tests are no more confident than
MAX_SAMPLES draws would make them. Values keep 4 significant digits (0.01%: far below
any threshold). The same reduction is applied to current runs, so a verdict is the same
whether the baseline is a saved file or the result directories it was saved from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics import latency, parse_requests
from bench.regression.rules import METRICS, QUANTILES

MAX_SAMPLES = 1000
SIGNIFICANT_DIGITS = 4


def request_values(requests: pd.DataFrame) -> dict[str, np.ndarray]:
    """Raw per-request values (ms) of one run, unreduced. Raises bench.metrics.RecordError
    for a record that cannot be measured."""
    ok = [r for r in parse_requests(requests) if r.ok]

    def each(metric) -> np.ndarray:
        return np.array([v for v in map(metric, ok) if v is not None], dtype=np.float64)

    return {
        "ttft_ms": each(latency.ttft_ms),
        "tpot_ms": each(latency.tpot_ms),
        "itl_ms": np.concatenate([latency.itl_ms(r) for r in ok]) if ok else np.empty(0),
        "e2e_ms": each(latency.e2e_ms),
    }


def reduce_values(values: np.ndarray) -> np.ndarray:
    """Sorted, at most MAX_SAMPLES quantiles, 4 significant digits (see module docstring)."""
    values = np.sort(np.asarray(values, dtype=np.float64))
    values = values[np.isfinite(values)]
    if len(values) > MAX_SAMPLES:
        values = np.quantile(values, np.linspace(0.0, 1.0, MAX_SAMPLES))
    return np.array([float(f"{v:.{SIGNIFICANT_DIGITS}g}") for v in values])


def run_percentiles(values: dict[str, np.ndarray]) -> dict[str, float | None]:
    """One run's p50 and p99 of every sample (raw values, linear interpolation, as
    summary.json), keyed like the metrics: "ttft_ms.p50". Repeats of these show the
    run-to-run noise that per-request values of one run cannot."""
    out: dict[str, float | None] = {}
    for m in METRICS:
        if m.kind == "distribution":
            v = values[m.source[0]]
            out[m.name] = float(np.quantile(v, QUANTILES[m.statistic])) if len(v) else None
    return out


def pooled_samples(per_run: list[dict[str, np.ndarray]]):
    """request_values of several repeats pooled and reduced, with the count before
    reduction, and each repeat's percentiles: (samples, sizes, [percentiles per run])."""
    pooled = {name: np.concatenate([v[name] for v in per_run]) for name in per_run[0]}
    return (
        {name: reduce_values(v) for name, v in pooled.items()},
        {name: int(np.isfinite(v).sum()) for name, v in pooled.items()},
        [run_percentiles(v) for v in per_run],
    )
