"""Drive one engine through one workload and record what the client saw.

The loop is the client: it hands requests over (`add_request`) when the workload says so,
calls `step()` while anything is unfinished, and reads the clock right after each step
returns, when that step's tokens are on the host. Every time in a RequestRecord is ns from
t0, the start of the measured run; warm-up happens before t0 and leaves no record.

Three ways to hand requests over (Workload.mode):
- offline: all of them at t0, whatever their arrival_s;
- open: each at t0 + arrival_s by the wall clock, stepping in between; a late hand-over
  (the engine was busy in a long step) shows as t_send > t_arrival, i.e. in ttft_queued;
- closed: `concurrency` clients, each sending its next request (in workload order) as soon
  as its previous one ends, whatever way it ended.

A run always returns its records: an engine exception gives status "failed", Ctrl-C gives
"interrupted"; requests then in flight end as "error" / "cancelled", requests never sent end
as "cancelled" with send_ns None, so the counts always add up to the workload.
"""

from __future__ import annotations

import dataclasses
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone

import pandas as pd

from bench.progress import RunProgress
from bench.records import DeviceSample, RequestRecord, device_frame, requests_frame, steps_frame
from engines.api import Engine, StepStats
from engines.request import STATUSES, ConfigError, Request, RequestError
from workloads.workload import Workload

WARMUP_MAX_NEW_TOKENS = 4
_SPIN_NS = 1_000_000  # sleep until this close to a deadline, then spin: time.sleep overshoots


@dataclass
class RunRecords:
    """Raw records of one run. Request times are ns from t0; `steps` hold the engines'
    absolute perf_counter_ns and `device` the sampler's: frames() rebases both."""

    requests: list[RequestRecord]
    steps: list[StepStats]
    device: list[DeviceSample]
    t0_ns: int
    status: str = "complete"  # complete / interrupted / failed
    warmup_s: float = 0.0
    error: str | None = None
    traceback: str | None = None
    started_at: str = ""  # wall clock at t0, ISO 8601 UTC
    sampler: dict = field(default_factory=dict)  # {source, interval_s} when sampled

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        device = [dataclasses.replace(s, t_ns=s.t_ns - self.t0_ns) for s in self.device]
        return requests_frame(self.requests), steps_frame(self.steps, self.t0_ns), device_frame(device)


def warmup_requests_for(workload: Workload, n: int) -> list[Request]:
    """Short copies of the first n requests. Each prompt is rotated by one token so that a
    prefix cache filled by warm-up cannot serve the measured requests' prompts."""
    out = []
    for i, r in enumerate(workload.requests[:n]):
        prompt = r.prompt_ids[1:] + r.prompt_ids[:1]
        out.append(
            dataclasses.replace(
                r,
                id=f"warmup-{i}",
                prompt_ids=prompt,
                max_new_tokens=min(WARMUP_MAX_NEW_TOKENS, r.max_new_tokens),
                arrival_s=0.0,
                stop_token_ids=(),
            )
        )
    return out


def _warm_up(engine: Engine, workload: Workload, n: int) -> float:
    start = time.perf_counter()
    for request in warmup_requests_for(workload, n):
        try:
            engine.add_request(request)
        except RequestError:
            continue  # the measured run will record this request's error; warm-up just skips it
    while engine.has_unfinished():
        engine.step()
    return time.perf_counter() - start


def _sleep_until(t0_ns: int, target_ns: int) -> None:
    remaining = t0_ns + target_ns - time.perf_counter_ns()
    if remaining > 2 * _SPIN_NS:
        time.sleep((remaining - _SPIN_NS) / 1e9)
    while time.perf_counter_ns() < t0_ns + target_ns:
        pass


class _Client:
    """The client's side of one run: sends requests, turns token events into records."""

    def __init__(self, engine: Engine, keep_token_ids: bool, timeout_s: float | None, progress: RunProgress):
        self.engine = engine
        self.keep_token_ids = keep_token_ids
        self.timeout_ns = None if timeout_s is None else int(timeout_s * 1e9)
        self.progress = progress
        self.records: dict[str, RequestRecord] = {}
        # insertion order is send order, which (one timeout for all) is also deadline order
        self.in_flight: dict[str, RequestRecord] = {}
        self.steps: list[StepStats] = []
        self.t0_ns = 0

    def now(self) -> int:
        return time.perf_counter_ns() - self.t0_ns

    def send(self, request: Request, arrival_ns: int | None = None) -> None:
        send_ns = self.now()
        record = RequestRecord(
            request_id=request.id,
            arrival_ns=send_ns if arrival_ns is None else arrival_ns,
            prompt_tokens=len(request.prompt_ids),
            max_new_tokens=request.max_new_tokens,
            send_ns=send_ns,
        )
        self.records[request.id] = record
        try:
            self.engine.add_request(request)
        except RequestError as e:
            self._end(record, "error", str(e), self.now())
            return
        self.in_flight[request.id] = record

    def advance(self) -> None:
        """One engine step and its events; or, if the engine says it has nothing left while
        requests are still in flight, end those as errors instead of waiting forever."""
        if not self.engine.has_unfinished():
            t = self.now()
            for record in list(self.in_flight.values()):
                self._end(record, "error", "engine reported no unfinished work but never finished this request", t)
            return
        out = self.engine.step()
        t = self.now()
        if out.stats is not None:
            self.steps.append(out.stats)
        for event in out.events:
            record = self.in_flight.get(event.request_id)
            if record is None:
                continue  # warm-up leftovers, or a request that already timed out
            if event.token_ids:
                record.add_chunk(t, event.token_ids, self.keep_token_ids)
                self.progress.add_tokens(len(event.token_ids))
            if event.finished:
                self._end(record, event.status, event.error, t)
        self._expire(t)

    def _expire(self, t: int) -> None:
        if self.timeout_ns is None:
            return
        for record in list(self.in_flight.values()):
            if t - record.send_ns < self.timeout_ns:
                break
            self.engine.abort(record.request_id)
            self._end(record, "timeout", f"not finished within timeout_s={self.timeout_ns / 1e9:g}", t)

    def _end(self, record: RequestRecord, status: str, error: str | None, t: int) -> None:
        if status not in STATUSES:
            status, error = "error", f"engine reported unknown status {status!r} ({error})"
        elif status == "ok" and not record.chunk_times_ns:
            status, error = "error", "engine finished the request without producing a token"
        record.status = status
        record.error = error
        record.finish_ns = record.chunk_times_ns[-1] if status == "ok" else t
        self.in_flight.pop(record.request_id, None)
        self.progress.request_finished()

    def stop_all(self, in_flight_status: str, reason: str) -> None:
        """End every sent request that has not ended (interrupt or engine failure), including
        one caught between add_request and in_flight by the interrupt."""
        t = self.now()
        for record in [r for r in self.records.values() if r.finish_ns is None]:
            if in_flight_status == "cancelled":
                try:
                    self.engine.abort(record.request_id)
                except Exception:
                    pass  # the run is already stopping; freeing memory is best effort
            self._end(record, in_flight_status, reason, t)


def _run_offline(client: _Client, workload: Workload) -> None:
    for request in workload.requests:
        client.send(request, arrival_ns=0)
    while client.in_flight:
        client.advance()


def _run_open(client: _Client, workload: Workload) -> None:
    schedule = sorted(workload.requests, key=lambda r: r.arrival_s)  # stable: ties keep order
    due = [round(r.arrival_s * 1e9) for r in schedule]
    i = 0
    while i < len(schedule) or client.in_flight:
        now = client.now()
        while i < len(schedule) and due[i] <= now:
            client.send(schedule[i], arrival_ns=due[i])
            i += 1
        if client.in_flight:
            client.advance()
        elif i < len(schedule):
            _sleep_until(client.t0_ns, due[i])


def _run_closed(client: _Client, workload: Workload) -> None:
    queue = deque(workload.requests)
    while queue or client.in_flight:
        # a client is ready the moment its last request ended: its arrival is its send
        while queue and len(client.in_flight) < workload.concurrency:
            client.send(queue.popleft())
        if client.in_flight:
            client.advance()


_MODES = {"offline": _run_offline, "open": _run_open, "closed": _run_closed}


def _check_ids(workload: Workload) -> None:
    seen: set[str] = set()
    for r in workload.requests:
        if r.id in seen:
            raise ConfigError(f"workload {workload.name!r}: request id {r.id!r} appears more than once")
        seen.add(r.id)


def run_workload(
    engine: Engine,
    workload: Workload,
    *,
    keep_token_ids: bool = True,
    progress: bool = True,
    sampler=None,
    timeout_s: float | None = None,
    warmup_requests: int = 2,
) -> RunRecords:
    """Run `workload` on `engine` and return the raw records (see the module docstring).

    sampler: a bench.sampler.DeviceSampler, started at t0 and stopped at the end (warm-up is
    not sampled). timeout_s: per request, from its send; an expired request is aborted in the
    engine and recorded as "timeout".
    """
    _check_ids(workload)
    if timeout_s is not None and timeout_s <= 0:
        raise ConfigError(f"timeout_s must be > 0, got {timeout_s!r}")
    bar = RunProgress(len(workload.requests), f"{engine.name} {workload.name}", enabled=progress)
    client = _Client(engine, keep_token_ids, timeout_s, bar)
    result = RunRecords(requests=[], steps=client.steps, device=[], t0_ns=0)
    sent_all = False
    try:
        try:
            result.warmup_s = _warm_up(engine, workload, warmup_requests)
            if sampler is not None:
                sampler.start()
            result.started_at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
            client.t0_ns = result.t0_ns = time.perf_counter_ns()
            _MODES[workload.mode](client, workload)
            sent_all = True
        except KeyboardInterrupt:
            result.status, result.error = "interrupted", "interrupted by the user (Ctrl-C)"
            client.stop_all("cancelled", "run interrupted")
        except Exception as e:
            result.status, result.error = "failed", f"{type(e).__name__}: {e}"
            result.traceback = traceback.format_exc()
            client.stop_all("error", f"engine failed: {result.error}")
    finally:
        bar.close()
        if sampler is not None:
            result.device = sampler.stop()
            result.sampler = sampler.describe()
    result.requests = _in_workload_order(client, workload, sent_all)
    return result


def _in_workload_order(client: _Client, workload: Workload, sent_all: bool) -> list[RequestRecord]:
    if sent_all:
        return [client.records[r.id] for r in workload.requests]
    t_stop = client.now() if client.t0_ns else 0
    out = []
    for r in workload.requests:
        record = client.records.get(r.id)
        if record is None:  # never sent: the run stopped first
            record = RequestRecord(
                request_id=r.id,
                arrival_ns=_unsent_arrival_ns(r, workload.mode, t_stop),
                prompt_tokens=len(r.prompt_ids),
                max_new_tokens=r.max_new_tokens,
                status="cancelled",
                error="not sent: the run stopped first",
            )
        out.append(record)
    return out


def _unsent_arrival_ns(request: Request, mode: str, t_stop: int) -> int:
    if mode == "open":
        return round(request.arrival_s * 1e9)  # when it was due, even if after the stop
    return 0 if mode == "offline" else t_stop  # closed: no client got to it before the stop
