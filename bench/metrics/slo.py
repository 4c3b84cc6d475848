"""Service-level objectives, goodput and SLO attainment."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from bench.metrics.latency import e2e_ms, tpot_ms, ttft_ms
from bench.metrics.requests import RequestTimes
from bench.metrics.throughput import duration_s


@dataclass(frozen=True)
class SLO:
    """Latency targets in ms, each optional. A request meets a target when its value is at
    most the target (inclusive)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def __post_init__(self):
        for name, value in asdict(self).items():
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"SLO {name}: {value!r}, expected a positive number of milliseconds")

    @property
    def given(self) -> bool:
        return any(v is not None for v in asdict(self).values())


def meets_slo(r: RequestTimes, slo: SLO) -> bool:
    """True when an ok request meets every target given.

    A request with fewer than 2 output tokens has no TPOT and cannot miss a TPOT target (as
    in vLLM's goodput); one with no token at all misses any TTFT target."""
    if not r.ok:
        return False
    if slo.ttft_ms is not None:
        ttft = ttft_ms(r)
        if ttft is None or ttft > slo.ttft_ms:
            return False
    if slo.tpot_ms is not None:
        tpot = tpot_ms(r)
        if tpot is not None and tpot > slo.tpot_ms:
            return False
    return slo.e2e_ms is None or e2e_ms(r) <= slo.e2e_ms


def goodput_req_per_s(requests: list[RequestTimes], slo: SLO) -> float | None:
    """Goodput: requests that are ok and meet every SLO given / W. Higher is better.
    None when no SLO is given or W is undefined (no ok request)."""
    if not slo.given:
        return None
    w = duration_s([r for r in requests if r.ok])
    if w is None:
        return None
    return sum(meets_slo(r, slo) for r in requests) / w


def slo_attainment(requests: list[RequestTimes], slo: SLO) -> float | None:
    """Share of requests that are ok and meet every SLO: good / (ok + error + timeout +
    rejected). Higher is better. Failures count against it, so refusing load never looks
    good; cancelled requests are left out, since the client withdrew them (a workload's
    deadline or the user), not the server. None when no SLO is given or nothing counts."""
    if not slo.given:
        return None
    counted = [r for r in requests if r.status != "cancelled"]
    if not counted:
        return None
    return sum(meets_slo(r, slo) for r in counted) / len(counted)
