"""Raw records of a run -> the numbers a user reads (summary.json).

Definitions are those of METRICS.md, one small function each:
    requests.py      read and check request records
    latency.py       TTFT, TTFT from arrival, E2E, TPOT, ITL (per token and per chunk)
    throughput.py    the window W, throughputs, concurrency
    slo.py           SLO targets, goodput, SLO attainment
    engine.py        padding efficiency, KV utilisation and the engine's other counters
    device.py        utilisation, memory, power, energy over the window
    distribution.py  n, mean, std, min, max and percentiles of raw values
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.metrics import latency
from bench.metrics.device import device_summary
from bench.metrics.distribution import distribution
from bench.metrics.engine import engine_summary
from bench.metrics.requests import STATUSES, RecordError, RequestTimes, parse_requests
from bench.metrics.slo import SLO, goodput_req_per_s, slo_attainment
from bench.metrics.throughput import (
    concurrency_mean,
    concurrency_peak,
    duration_s,
    output_tok_per_s,
    request_per_s,
    total_tok_per_s,
    window_ns,
)
from bench.roofline import with_efficiency

__all__ = ["SLO", "RecordError", "RequestTimes", "distribution", "parse_requests", "summarize"]


def _per_request(ok: list[RequestTimes], metric) -> dict | None:
    return distribution([v for v in (metric(r) for r in ok) if v is not None])


def _pooled(ok: list[RequestTimes], gaps) -> dict | None:
    return distribution(np.concatenate([gaps(r) for r in ok]) if ok else [])


def summarize(
    requests: pd.DataFrame,
    steps: pd.DataFrame,
    device: pd.DataFrame,
    *,
    slo: SLO | None = None,
    roofline: dict | None = None,
) -> dict:
    """Every aggregate of a run, keyed as docs/RESULTS.md's summary.json (less format_version).

    Latencies are over ok requests only; counts say how many were not. `roofline` is the
    bound of bench.roofline.roofline_bound for this workload; its efficiency is computed
    here against W. `consistency` is left None: bench compare fills it across runs.
    """
    parsed = parse_requests(requests)
    ok = [r for r in parsed if r.ok]
    slo = slo or SLO()
    output_tokens = sum(r.output_tokens for r in ok)
    return {
        "counts": {"total": len(parsed), **{s: sum(r.status == s for r in parsed) for s in STATUSES}},
        "duration_s": duration_s(ok),
        "prompt_tokens": sum(r.prompt_tokens for r in ok),
        "output_tokens": output_tokens,
        "output_tok_per_s": output_tok_per_s(ok),
        "total_tok_per_s": total_tok_per_s(ok),
        "request_per_s": request_per_s(ok),
        "ttft_ms": _per_request(ok, latency.ttft_ms),
        "ttft_queued_ms": _per_request(ok, latency.ttft_queued_ms),
        "e2e_ms": _per_request(ok, latency.e2e_ms),
        "tpot_ms": _per_request(ok, latency.tpot_ms),
        "tpot_not_evaluable": sum(r.output_tokens < 2 for r in ok),
        "itl_ms": _pooled(ok, latency.itl_ms),
        "itl_chunk_ms": _pooled(ok, latency.itl_chunk_ms),
        "slo": {"ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms, "e2e_ms": slo.e2e_ms} if slo.given else None,
        "goodput_req_per_s": goodput_req_per_s(parsed, slo),
        "slo_attainment": slo_attainment(parsed, slo),
        "concurrency_mean": concurrency_mean(ok),
        "concurrency_peak": concurrency_peak(ok),
        "engine": engine_summary(steps),
        "device": device_summary(device, window_ns(ok), output_tokens),
        "roofline": with_efficiency(roofline, duration_s(ok)) if roofline is not None else None,
        "consistency": None,
    }
