"""Workload -> load plan: schedule order, bounds, closed loop, shares for workers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.load.plan import LoadPlan, plan_from_workload
from engines.request import ConfigError, Request, SamplingParams
from workloads.workload import Workload


def workload(arrivals, mode="open", concurrency=None, stop=()):
    requests = [
        Request(f"r{i}", (3, 4, 5 + i), 4 + i, arrival_s=t, sampling=SamplingParams(temperature=0.5, top_k=7, seed=i),
                stop_token_ids=stop)
        for i, t in enumerate(arrivals)
    ]
    return Workload("w", requests, mode=mode, concurrency=concurrency)


def plan(wl, **kw):
    return plan_from_workload(wl, url="http://127.0.0.1:1", served_model="m", **kw)


def test_open_loop_follows_the_global_schedule():
    p = plan(workload([0.3, 0.1, 0.2]))
    assert p.mode == "open"
    assert [r.id for r in p.requests] == ["r1", "r2", "r0"]
    assert [r.arrival_s for r in p.requests] == [0.1, 0.2, 0.3]
    assert p.offered_rate == pytest.approx(2 / 0.2)
    body = p.requests[0].body
    assert body["prompt"] == [3, 4, 6] and body["max_tokens"] == 5 and body["stream"] is True
    assert body["ignore_eos"] is True and body["top_k"] == 7 and body["seed"] == 1
    assert body["stream_options"] == {"include_usage": True} and body["model"] == "m"


def test_stop_tokens_replace_ignore_eos():
    body = plan(workload([0.0], stop=(2,))).requests[0].body
    assert body["stop_token_ids"] == [2] and "ignore_eos" not in body


def test_offline_is_one_burst():
    p = plan(workload([5.0, 1.0, 3.0], mode="offline"))
    assert [r.arrival_s for r in p.requests] == [0, 0, 0]
    assert p.offered_rate is None and "one burst" in p.notes[0]


def test_bounds_cut_the_plan_and_say_so():
    p = plan(workload([0, 1, 2, 3, 4, 5]), max_requests=5, duration_s=3.5)
    assert [r.id for r in p.requests] == ["r0", "r1", "r2", "r3"]
    assert any("first 5 of 6" in n for n in p.notes) and any("left out 1" in n for n in p.notes)
    with pytest.raises(ConfigError, match="no request left"):
        plan(workload([10.0]), duration_s=5)


def test_closed_loop_from_the_workload_or_the_option():
    p = plan(workload([0, 0, 0], mode="closed", concurrency=2))
    assert (p.mode, p.users, p.offered_rate) == ("closed", 2, None)
    p = plan(workload([0.5, 0.1]), concurrency=3)
    assert (p.mode, p.users) == ("closed", 3)
    assert [r.id for r in p.requests] == ["r0", "r1"]  # workload order, not arrival order


@given(st.integers(1, 40), st.integers(1, 8), st.integers(1, 100))
def test_worker_shares_cover_the_plan_exactly_once(n, workers, users):
    p = plan(workload([i * 0.01 for i in range(n)]), users=users)
    shares = [p.share(i, workers) for i in range(workers)]
    ids = sorted(r.id for s in shares for r in s.requests)
    assert ids == sorted(r.id for r in p.requests)
    for s in shares:  # each share keeps schedule order
        assert [r.arrival_s for r in s.requests] == sorted(r.arrival_s for r in s.requests)
    if users >= workers:
        assert sum(s.users for s in shares) == users


def test_plan_survives_json():
    p = plan(workload([0.0, 0.5]))
    q = LoadPlan.from_json(p.to_json())
    assert q == p
