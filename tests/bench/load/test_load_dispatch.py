"""The dispatcher hands out one process's share of the schedule (gevent, no server)."""

from __future__ import annotations

import time

import gevent
import pytest

from bench.load.dispatch import Dispatcher
from bench.load.plan import plan_from_workload
from bench.records import RequestRecord
from engines.request import Request
from workloads.workload import Workload

pytestmark = pytest.mark.timeout(30)


def plan(n, mode="open", duration_s=60.0, rate=100.0):
    wl = Workload("w", [Request(f"r{i}", (3,), 2, arrival_s=i / rate) for i in range(n)], mode=mode,
                  concurrency=2 if mode == "closed" else None)
    return plan_from_workload(wl, url="http://127.0.0.1:1", served_model="m", duration_s=duration_s)


def test_claims_follow_the_schedule_and_finish_when_all_are_done():
    d = Dispatcher(plan(3))
    d.start(time.time_ns())
    assert [d.claim() for _ in range(4)] == [0, 1, 2, None]
    assert not d.finished.is_set()
    for i in range(3):
        d.done(RequestRecord(f"r{i}", 0, 1, 2))
    assert d.finished.is_set() and d.not_sent == 0


def test_closed_loop_stops_claiming_after_the_duration():
    d = Dispatcher(plan(10, mode="closed", duration_s=0.05))
    d.start(time.time_ns())
    first = d.claim()
    time.sleep(0.06)
    assert d.claim() is None and not d.finished.is_set()  # one still in flight
    d.done(RequestRecord(f"r{first}", 0, 1, 2))
    assert d.claim() is None and d.finished.is_set() and d.not_sent == 9


def test_sends_wait_for_their_time_and_idle_spin_is_counted():
    d = Dispatcher(plan(1))
    d.start(time.time_ns())
    lags = []

    def user(target_ms):
        d.wait_until(int(target_ms * 1e6))
        lags.append(d.now() - int(target_ms * 1e6))

    gevent.joinall([gevent.spawn(user, t) for t in (20, 40, 60)])
    assert all(lag >= 0 for lag in lags)  # never early
    assert sorted(lags)[1] < 3_000_000  # and, on a calm moment, on time (median < 3 ms)
    assert 0 < d.spin_ns < 60_000_000  # some idle polling, never more than the wall time


def test_an_empty_share_is_finished_at_once():
    p = plan(1)
    assert Dispatcher(p.share(1, 2)).finished.is_set()
