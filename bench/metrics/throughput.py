"""Run-level rates over the measured window W, and how many requests were in flight.

W runs from the first t_send to the last t_last over ok requests. With no ok requests, or a
window of zero length, W is undefined and every rate is None rather than 0 or infinity: a
run that served nothing has no throughput to report, and the counts say why.
"""

from __future__ import annotations

from bench.metrics.requests import RequestTimes

NS_PER_S = 1e9


def window_ns(ok: list[RequestTimes]) -> tuple[int, int] | None:
    """(first t_send, last t_last) over ok requests; None if there are none or it is empty."""
    if not ok:
        return None
    start = min(r.t_send for r in ok)
    end = max(r.t_last for r in ok)
    return (start, end) if end > start else None


def duration_s(ok: list[RequestTimes]) -> float | None:
    """W = last t_last - first t_send over ok requests, in seconds."""
    w = window_ns(ok)
    return None if w is None else (w[1] - w[0]) / NS_PER_S


def output_tok_per_s(ok: list[RequestTimes]) -> float | None:
    """Output throughput: sum of N over ok requests / W. Higher is better."""
    w = duration_s(ok)
    return None if w is None else sum(r.output_tokens for r in ok) / w


def total_tok_per_s(ok: list[RequestTimes]) -> float | None:
    """Total throughput: (prompt + output tokens of ok requests) / W. Higher is better."""
    w = duration_s(ok)
    return None if w is None else sum(r.prompt_tokens + r.output_tokens for r in ok) / w


def request_per_s(ok: list[RequestTimes]) -> float | None:
    """Request throughput: ok requests / W. Higher is better."""
    w = duration_s(ok)
    return None if w is None else len(ok) / w


def concurrency_mean(ok: list[RequestTimes]) -> float | None:
    """Mean requests in flight: sum of E2E over ok requests / W (Little's law)."""
    w = window_ns(ok)
    if w is None:
        return None
    return sum(r.t_last - r.t_send for r in ok) / (w[1] - w[0])


def concurrency_peak(ok: list[RequestTimes]) -> int | None:
    """Most ok requests in flight at once: a sweep over the half-open intervals
    [t_send, t_last), so a request finishing at t and one sent at t never overlap."""
    if not ok:
        return None
    # at equal times the end (-1) sorts before the start (+1)
    events = sorted([(r.t_send, 1) for r in ok] + [(r.t_last, -1) for r in ok])
    peak = running = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    return peak
