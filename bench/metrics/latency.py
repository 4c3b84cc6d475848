"""Per-request latencies (METRICS.md), in milliseconds. Lower is better for all of them.

Each function takes one `RequestTimes` and returns a value (or the gaps) for that request, or
None where the metric is not defined for it. Callers pass ok requests only: a failed
request's partial times do not describe the service a client got.
"""

from __future__ import annotations

import numpy as np

from bench.metrics.requests import RequestTimes

NS_PER_MS = 1e6


def ttft_ms(r: RequestTimes) -> float | None:
    """Time to first token: t_first - t_send. Lower is better. None if no token arrived."""
    if r.t_first is None:
        return None
    return (r.t_first - r.t_send) / NS_PER_MS


def ttft_queued_ms(r: RequestTimes) -> float | None:
    """Time to first token from arrival: t_first - t_arrival. Lower is better.

    Includes any lag between the workload's arrival time and the send: when the harness or
    the engine's queue falls behind, only this one shows it."""
    if r.t_first is None:
        return None
    return (r.t_first - r.t_arrival) / NS_PER_MS


def e2e_ms(r: RequestTimes) -> float:
    """End-to-end latency: t_last - t_send. Lower is better."""
    return (r.t_last - r.t_send) / NS_PER_MS


def tpot_ms(r: RequestTimes) -> float | None:
    """Time per output token: (t_last - t_first) / (N - 1), for N >= 2 output tokens, else
    None (not evaluable). Lower is better. (GenAI-Perf and AIPerf call this ITL.)"""
    if r.output_tokens < 2:
        return None
    return (r.t_last - r.t_first) / (r.output_tokens - 1) / NS_PER_MS


def itl_chunk_ms(r: RequestTimes) -> np.ndarray:
    """Gaps between consecutive chunks: chunk_time[i] - chunk_time[i-1], one per chunk after
    the first. Lower is better. In-process every chunk is one token, so this equals itl_ms."""
    return np.diff(r.chunk_times) / NS_PER_MS


def itl_ms(r: RequestTimes) -> np.ndarray:
    """Inter-token latency: a chunk of k tokens arriving a gap g after the previous chunk gives
    k gaps of g / k. Lower is better.

    The first chunk gives no gaps, however many tokens it carries: they arrived together
    with the first token and their wait is TTFT's. Counting them as gaps of 0 would reward
    a server that buffers its first tokens into one chunk. So a request gives
    N - (tokens in its first chunk) gaps, summing to t_last - t_first (N - 1 gaps, and
    mean = TPOT, when every chunk is one token).
    """
    if len(r.chunk_times) < 2:
        return np.zeros(0)
    gaps = np.diff(r.chunk_times) / NS_PER_MS
    k = r.chunk_tokens[1:]
    return np.repeat(gaps / k, k)
