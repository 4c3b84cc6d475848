"""The fidelity check flags a load generator that fell behind, and only then."""

from __future__ import annotations

import pytest

from bench.load.fidelity import load_fidelity
from bench.load.plan import plan_from_workload
from engines.request import Request
from workloads.workload import Workload


def open_plan(n=100, rate=100.0):
    wl = Workload("w", [Request(f"r{i}", (3,), 2, arrival_s=i / rate) for i in range(n)], mode="open")
    return plan_from_workload(wl, url="http://127.0.0.1:1", served_model="m")


def records(plan, lag_ms):
    return [
        {"request_id": r.id, "arrival_ns": round(r.arrival_s * 1e9), "send_ns": round(r.arrival_s * 1e9 + lag_ms(i) * 1e6)}
        for i, r in enumerate(plan.requests)
    ]


CALM = [{"role": "local", "busy_pct": 20.0, "cpu_pct_mean": 25.0}]


def test_on_time_load_is_not_generator_limited():
    p = open_plan()
    f = load_fidelity(p, records(p, lambda i: 0.2), CALM)
    assert f["generator_limited"] is False and f["warnings"] == []
    assert f["offered_rate_req_per_s"] == pytest.approx(100.0)
    assert f["achieved_rate_req_per_s"] == pytest.approx(100.0)
    assert f["send_lag_ms"]["p99"] == pytest.approx(0.2)
    assert f["requests_sent"] == 100 and f["client_cpu_busy_pct_max"] == 20.0


def test_growing_lag_is_flagged_and_lowers_the_achieved_rate():
    p = open_plan()
    # each send 5 ms later than the one before: sent every 15 ms instead of every 10
    f = load_fidelity(p, records(p, lambda i: i * 5.0), CALM, lag_limit_ms=5.0)
    assert f["generator_limited"] is True
    assert "p99 send lag" in f["warnings"][0]
    assert f["achieved_rate_req_per_s"] == pytest.approx(1000 / 15)
    assert f["achieved_over_offered"] == pytest.approx(2 / 3)


def test_a_saturated_or_missing_process_is_flagged():
    p = open_plan()
    busy = [{"role": "worker 0", "busy_pct": 97.0}, {"role": "worker 1", "missing": True}]
    f = load_fidelity(p, records(p, lambda i: 0.1), busy, cpu_limit_pct=90)
    assert f["generator_limited"] is True
    assert any("worker 0 was 97% busy" in w for w in f["warnings"])
    assert any("worker 1 sent no results" in w for w in f["warnings"])


def test_closed_loop_has_no_schedule_to_lag_behind():
    wl = Workload("w", [Request(f"r{i}", (3,), 2) for i in range(4)], mode="closed", concurrency=2)
    p = plan_from_workload(wl, url="http://127.0.0.1:1", served_model="m")
    f = load_fidelity(p, [{"request_id": "r0", "arrival_ns": 5, "send_ns": 5}], CALM)
    assert f["send_lag_ms"] is None and f["offered_rate_req_per_s"] is None
