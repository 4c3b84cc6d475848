"""The runner on the mock engine and on small fake engines, with hand-built workloads."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.runner import run_workload, warmup_requests_for
from bench.sampler import DeviceSampler
from engines.api import StepOutput
from engines.mock import MockEngine
from engines.request import ConfigError, Request, SamplingParams
from tests.bench.helpers import Exploding
from workloads.workload import Workload


def make_requests(n, *, prompt=8, out=4, arrivals=None, prefix="r"):
    return [
        Request(
            id=f"{prefix}{i:03d}",
            prompt_ids=tuple(range(3 + i, 3 + i + prompt)),
            max_new_tokens=out if isinstance(out, int) else out[i],
            arrival_s=0.0 if arrivals is None else arrivals[i],
        )
        for i in range(n)
    ]


def run(engine, workload, **kw):
    kw.setdefault("progress", False)
    return run_workload(engine, workload, **kw)


def by_id(records):
    return {r.request_id: r for r in records.requests}


def test_offline_all_sent_at_start_and_all_finish():
    engine = MockEngine(step_time_s=0.001, max_batch=4)
    wl = Workload("w", make_requests(10, out=[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]))
    rec = run(engine, wl)
    assert rec.status == "complete" and rec.error is None
    assert [r.request_id for r in rec.requests] == [r.id for r in wl.requests]
    for r, req in zip(rec.requests, wl.requests):
        assert r.status == "ok"
        assert r.arrival_ns == 0
        # handed over before the first step: every send precedes every token
        assert r.send_ns < min(x.first_token_ns for x in rec.requests)
        assert r.output_tokens == req.max_new_tokens == len(r.chunk_times_ns) == len(r.output_token_ids)
        assert r.finish_ns == r.chunk_times_ns[-1]
        assert r.chunk_times_ns == sorted(r.chunk_times_ns)
    # max_batch=4: requests 4.. wait for a free slot, so their first token comes later
    assert rec.requests[4].first_token_ns > rec.requests[0].first_token_ns
    # the mock's tokens are a pure function of the prompt: the runner must not mix requests up
    mock = MockEngine()
    for r, req in zip(rec.requests, wl.requests):
        assert r.output_token_ids == [mock._token(req, i) for i in range(req.max_new_tokens)]
    requests, steps, device = rec.frames()
    assert len(requests) == 10 and len(steps) == len(rec.steps) > 0
    assert steps["start_ns"].min() >= 0  # rebased to t0; warm-up steps are not in the run
    assert device.empty


def test_keep_token_ids_false_drops_ids():
    rec = run(MockEngine(), Workload("w", make_requests(3)), keep_token_ids=False)
    assert all(r.output_token_ids is None and r.output_tokens == 4 for r in rec.requests)


def test_open_loop_sends_on_schedule():
    arrivals = [0.0, 0.02, 0.05, 0.05, 0.09, 0.12]
    wl = Workload("open", make_requests(6, out=2, arrivals=arrivals), mode="open")
    rec = run(MockEngine(step_time_s=0.001), wl)
    assert rec.status == "complete"
    for r, a in zip(rec.requests, arrivals):
        assert r.arrival_ns == round(a * 1e9)
        lag_ms = (r.send_ns - r.arrival_ns) / 1e6
        assert 0 <= lag_ms < 10, f"{r.request_id} sent {lag_ms:.3f} ms after its arrival"
        assert r.status == "ok"
    # the engine ran dry between arrivals 0.05 and 0.09: the run waited instead of sending early
    assert rec.requests[4].send_ns >= 90_000_000


def test_open_loop_lag_shows_when_engine_is_busy():
    # one long step (50 ms) blocks the client: a request due at 10 ms is sent late
    wl = Workload("open", make_requests(2, out=[1, 1], arrivals=[0.0, 0.01]), mode="open")
    rec = run(MockEngine(step_time_s=0.05), wl, warmup_requests=0)
    late = rec.requests[1]
    assert late.send_ns - late.arrival_ns > 30_000_000
    assert late.first_token_ns - late.arrival_ns > late.first_token_ns - late.send_ns


def test_open_loop_unsorted_arrivals_keep_workload_order_in_records():
    wl = Workload("open", make_requests(3, out=1, arrivals=[0.03, 0.0, 0.01]), mode="open")
    rec = run(MockEngine(), wl)
    assert [r.request_id for r in rec.requests] == ["r000", "r001", "r002"]
    sends = [r.send_ns for r in rec.requests]
    assert sends[1] < sends[2] < sends[0]


@pytest.mark.parametrize("concurrency", [1, 3])
def test_closed_loop_never_exceeds_concurrency(concurrency):
    outs = [1, 5, 2, 7, 3, 1, 4, 2, 6, 1]
    wl = Workload("closed", make_requests(10, out=outs), mode="closed", concurrency=concurrency)
    rec = run(MockEngine(step_time_s=0.0005), wl)
    assert rec.status == "complete" and all(r.status == "ok" for r in rec.requests)
    events = sorted(
        [(r.send_ns, 1) for r in rec.requests] + [(r.finish_ns, -1) for r in rec.requests],
        key=lambda e: (e[0], e[1]),  # a finish and a send at the same ns: finish first
    )
    in_flight = peak = 0
    for _, d in events:
        in_flight += d
        peak = max(peak, in_flight)
    assert peak == concurrency
    # requests are taken in workload order
    sends = [r.send_ns for r in rec.requests]
    assert sends == sorted(sends)
    # the next request goes out only after one ends: the (k+c)-th send follows some finish
    finishes = sorted(r.finish_ns for r in rec.requests)
    for k in range(concurrency, 10):
        assert sends[k] >= finishes[k - concurrency]
        assert rec.requests[k].arrival_ns == rec.requests[k].send_ns


def test_request_error_is_recorded_and_others_finish():
    reqs = make_requests(4)
    reqs[1] = Request(id="bad", prompt_ids=(1, 2, 99999), max_new_tokens=3)  # outside the vocab
    rec = run(MockEngine(vocab_size=1000), Workload("w", reqs))
    recs = by_id(rec)
    assert rec.status == "complete"
    assert recs["bad"].status == "error" and "outside the vocabulary" in recs["bad"].error
    assert recs["bad"].output_tokens == 0 and recs["bad"].send_ns is not None
    assert [recs[i].status for i in ("r000", "r002", "r003")] == ["ok"] * 3


def test_timeout_aborts_the_request():
    reqs = make_requests(3, out=[2, 10_000, 3])
    engine = MockEngine(step_time_s=0.002)
    rec = run(engine, Workload("w", reqs), timeout_s=0.1)
    recs = by_id(rec)
    slow = recs["r001"]
    assert slow.status == "timeout" and "timeout_s=0.1" in slow.error
    assert 100e6 <= slow.finish_ns - slow.send_ns < 300e6
    assert 0 < slow.output_tokens < 10_000
    assert recs["r000"].status == recs["r002"].status == "ok"
    engine.step()  # the abort reached the engine: its memory is free
    assert not engine.has_unfinished()


def test_engine_finished_with_error_status():
    class OneFails(MockEngine):
        def step(self):
            out = super().step()
            for e in out.events:
                if e.request_id == "r001" and len(self._running.get("r001", (None, 0))) and not e.finished:
                    e.finished, e.status, e.error = True, "error", "CUDA says no"
                    self._running.pop("r001", None)
            return out

    rec = run(OneFails(), Workload("w", make_requests(3, out=5)), warmup_requests=0)
    recs = by_id(rec)
    assert recs["r001"].status == "error" and recs["r001"].error == "CUDA says no"
    assert recs["r001"].output_tokens == 1  # the token that came with the failure counts
    assert recs["r000"].status == recs["r002"].status == "ok"


def mixed_workload():
    return Workload("w", make_requests(6, out=[1, 2, 2, 50, 50, 50]))


def test_engine_exception_gives_failed_run_with_records():
    engine = Exploding(RuntimeError("kernel fault"), at=5, max_batch=3)
    rec = run(engine, mixed_workload(), warmup_requests=0)
    assert rec.status == "failed" and rec.error == "RuntimeError: kernel fault"
    assert "kernel fault" in rec.traceback
    statuses = [r.status for r in rec.requests]
    assert statuses[:3] == ["ok", "ok", "ok"]  # finished before the fault: kept
    assert statuses[3:] == ["error"] * 3
    assert all("kernel fault" in r.error for r in rec.requests[3:])
    assert rec.requests[3].output_tokens > 0  # partial output is kept too


def test_keyboard_interrupt_keeps_what_finished():
    engine = Exploding(KeyboardInterrupt(), at=5, max_batch=3)
    rec = run(engine, mixed_workload(), warmup_requests=0)
    assert rec.status == "interrupted"
    assert [r.status for r in rec.requests] == ["ok"] * 3 + ["cancelled"] * 3
    engine.step()  # the runner aborted them in the engine
    assert not engine.has_unfinished()


def test_interrupt_before_every_request_is_sent_records_the_rest_as_cancelled():
    arrivals = [0.0, 0.0, 5.0, 6.0]
    wl = Workload("open", make_requests(4, out=[1, 200, 1, 1], arrivals=arrivals), mode="open")
    rec = run(Exploding(KeyboardInterrupt(), at=10), wl, warmup_requests=0)
    assert rec.status == "interrupted"
    recs = by_id(rec)
    assert recs["r000"].status == "ok" and recs["r001"].status == "cancelled"
    for rid, a in (("r002", 5.0), ("r003", 6.0)):
        assert recs[rid].status == "cancelled" and recs[rid].send_ns is None
        assert recs[rid].arrival_ns == round(a * 1e9)


def test_engine_that_forgets_a_request_does_not_hang():
    class Forgetful(MockEngine):
        def add_request(self, request):
            if request.id != "r001":
                super().add_request(request)

    rec = run(Forgetful(), Workload("w", make_requests(3)), warmup_requests=0)
    recs = by_id(rec)
    assert recs["r001"].status == "error" and "never finished" in recs["r001"].error
    assert recs["r000"].status == "ok"


def test_warmup_is_not_recorded_and_does_not_share_prefixes():
    class Recording(MockEngine):
        def __init__(self):
            super().__init__(step_time_s=0.001)
            self.added = []

        def add_request(self, request):
            self.added.append(request)
            super().add_request(request)

    engine = Recording()
    rng = np.random.default_rng(0)
    reqs = [Request(f"r{i}", tuple(int(t) for t in rng.integers(3, 1000, 12)), 20) for i in range(5)]
    wl = Workload("w", reqs)
    rec = run(engine, wl, warmup_requests=2)
    warm = [r for r in engine.added if r.id.startswith("warmup-")]
    assert [r.id for r in warm] == ["warmup-0", "warmup-1"]
    assert all(r.max_new_tokens == 4 for r in warm)
    assert all(w.prompt_ids[:4] != r.prompt_ids[:4] for w in warm for r in wl.requests)
    assert rec.warmup_s > 0
    assert not any(r.request_id.startswith("warmup") for r in rec.requests)
    assert engine.added.index(wl.requests[0]) == 2  # warm-up drained before the run
    assert all(s.start_ns >= rec.t0_ns for s in rec.steps)


def test_warmup_requests_keep_sampling_and_fit():
    r = Request("x", (5, 6, 7), max_new_tokens=2, sampling=SamplingParams(temperature=0.7, seed=3), stop_token_ids=(9,))
    (w,) = warmup_requests_for(Workload("w", [r]), 3)
    assert w.prompt_ids == (6, 7, 5) and w.max_new_tokens == 2
    assert w.sampling == r.sampling and w.stop_token_ids == ()


def test_duplicate_request_ids_are_refused():
    reqs = make_requests(2)
    reqs[1] = Request(id="r000", prompt_ids=(4, 5), max_new_tokens=1)
    with pytest.raises(ConfigError, match="'r000' appears more than once"):
        run(MockEngine(), Workload("dup", reqs))


def test_sampler_runs_during_the_run_only():
    sampler = DeviceSampler("cpu", interval_s=0.01)
    wl = Workload("w", make_requests(4, out=30))
    rec = run(MockEngine(step_time_s=0.002), wl, sampler=sampler)
    _, _, device = rec.frames()
    assert len(device) >= 3 and set(device["source"]) == {"cpu"}
    t = device["t_ns"].to_numpy()
    # the first sample brackets the start (taken just before t0), the rest follow in order
    assert -50e6 < t[0] <= 0 and np.all(np.diff(t) > 0)
    last_finish = max(r.finish_ns for r in rec.requests)
    assert t[-1] >= last_finish  # the last sample is taken after the run ended
    assert rec.sampler["source"] == "cpu"


def test_progress_bar_does_not_break_the_run(capsys):
    rec = run_workload(MockEngine(), Workload("w", make_requests(5)), progress=True)
    assert rec.status == "complete"
    assert "5/5" in capsys.readouterr().err


def test_one_step_output_without_stats_is_fine():
    class NoStats(MockEngine):
        def step(self):
            return StepOutput(super().step().events, None)

    rec = run(NoStats(), Workload("w", make_requests(3)))
    assert rec.steps == [] and all(r.status == "ok" for r in rec.requests)
    assert rec.frames()[1].empty


def test_open_loop_idle_wait_is_accurate():
    # nothing to do for 40 ms: the run sleeps, then hands the request over on time (never
    # early; within a millisecond on an idle machine, the bound leaves room for a busy CI
    # host while still catching a wait that overshoots by a sleep period)
    wl = Workload("open", make_requests(2, out=1, arrivals=[0.0, 0.04]), mode="open")
    t = time.perf_counter()
    rec = run(MockEngine(), wl, warmup_requests=0)
    assert time.perf_counter() - t < 1.0
    lag = rec.requests[1].send_ns - rec.requests[1].arrival_ns
    assert 0 <= lag < 10_000_000
