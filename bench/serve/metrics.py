"""The server's Prometheus metrics, on a registry of its own (two servers, two registries).

Updated by the engine thread (it alone sees steps and token events); read by /metrics.
Latencies are measured inside the server: TTFT from the request being queued for the engine
to its first token leaving the engine. A client's TTFT adds HTTP and network time on top.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from engines.api import StepStats

RATE_WINDOW_S = 10.0
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_TPOT_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
OUTCOMES = ("ok", "error", "cancelled", "invalid", "overloaded")


class WindowRate:
    """Events per second over the last `window_s` seconds, from a cumulative count."""

    def __init__(self, window_s: float = RATE_WINDOW_S):
        self.window_s = window_s
        self._points: deque[tuple[float, int]] = deque([(time.monotonic(), 0)])
        self._total = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        now = time.monotonic()
        with self._lock:
            self._total += n
            self._points.append((now, self._total))
            while len(self._points) > 2 and self._points[1][0] < now - self.window_s:
                self._points.popleft()

    def per_second(self) -> float:
        now = time.monotonic()
        with self._lock:
            # the count at the window's start: the last point at or before it
            start_t = now - self.window_s
            base = self._points[0][1]
            for t, total in self._points:
                if t > start_t:
                    break
                base = total
            span = min(self.window_s, now - self._points[0][0])
            return (self._total - base) / span if span > 0 else 0.0


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.running = Gauge("bench_requests_running", "Requests producing tokens (first token out, not finished)", registry=r)
        self.waiting = Gauge("bench_requests_waiting", "Requests accepted that have no token yet (the queue bounded by max_waiting)", registry=r)
        self.kv_used = Gauge("bench_kv_tokens_used", "KV cache positions holding real context", registry=r)
        self.kv_capacity = Gauge("bench_kv_tokens_capacity", "KV cache size in token positions", registry=r)
        self.kv_usage = Gauge("bench_kv_usage_ratio", "kv_tokens_used / kv_tokens_capacity (0 when unknown)", registry=r)
        self.prompt_tokens = Counter("bench_prompt_tokens", "Prompt tokens of requests that started", registry=r)
        self.generation_tokens = Counter("bench_generation_tokens", "Tokens generated", registry=r)
        self._prompt_rate = WindowRate()
        self._generation_rate = WindowRate()
        Gauge(
            "bench_prompt_tokens_per_second", f"Prompt tokens started per second over the last {RATE_WINDOW_S:g} s", registry=r
        ).set_function(self._prompt_rate.per_second)
        Gauge(
            "bench_generation_tokens_per_second", f"Tokens generated per second over the last {RATE_WINDOW_S:g} s", registry=r
        ).set_function(self._generation_rate.per_second)
        self.preemptions = Counter("bench_preemptions", "Requests preempted by the engine (KV memory ran out)", registry=r)
        self.steps = Counter("bench_engine_steps", "Engine steps", registry=r)
        self.requests = Counter("bench_requests", "Requests by outcome", ["outcome"], registry=r)
        for outcome in OUTCOMES:
            self.requests.labels(outcome)  # present from the start, at 0
        self.ttft = Histogram(
            "bench_time_to_first_token_seconds", "Queued to first token, inside the server", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.tpot = Histogram(
            "bench_time_per_output_token_seconds", "(last - first token) / (tokens - 1), per request", buckets=_TPOT_BUCKETS, registry=r
        )
        self.e2e = Histogram(
            "bench_e2e_request_latency_seconds", "Queued to last token, inside the server", buckets=_LATENCY_BUCKETS, registry=r
        )

    def on_step(self, stats: StepStats | None) -> None:
        self.steps.inc()
        if stats is None:
            return
        self.kv_used.set(stats.kv_tokens_used)
        self.kv_capacity.set(stats.kv_tokens_capacity)
        self.kv_usage.set(stats.kv_tokens_used / stats.kv_tokens_capacity if stats.kv_tokens_capacity else 0.0)
        if stats.preemptions:
            self.preemptions.inc(stats.preemptions)

    def on_started(self, prompt_tokens: int, ttft_s: float) -> None:
        self.prompt_tokens.inc(prompt_tokens)
        self._prompt_rate.add(prompt_tokens)
        self.ttft.observe(ttft_s)

    def on_tokens(self, n: int) -> None:
        self.generation_tokens.inc(n)
        self._generation_rate.add(n)

    def on_finished(self, outcome: str, tokens: int, first_to_last_s: float | None, e2e_s: float | None) -> None:
        self.requests.labels(outcome).inc()
        if outcome != "ok":
            return
        if e2e_s is not None:
            self.e2e.observe(e2e_s)
        if tokens >= 2 and first_to_last_s is not None:
            self.tpot.observe(first_to_last_s / (tokens - 1))

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
