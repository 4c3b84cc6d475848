"""Each step's own device time (StepStats.device_ns) is its own: the events recorded before
its work and after its tokens, read when its tokens reach the host, which with async
scheduling is one step() call after the step was returned. On a CPU it is None; fake CUDA
events check the wiring here (tests/engines/test_gpu.py checks real ones)."""

from __future__ import annotations

import itertools

import pytest

import engines.core.model_runner
import engines.transfer
from engines.request import Request
from tests.engines.fakes import fake_engine


class FakeEvent:
    """Event n of a run 'happens' at n * n ms, so that each step's pair of events (2k, 2k+1)
    spans 4k + 1 ms: any event taken from another step gives another number."""

    def __init__(self, n: int):
        self.ms = n * n

    def synchronize(self):
        pass

    def elapsed_time(self, end: FakeEvent) -> float:
        return end.ms - self.ms


def drive(engine):
    for i in range(5):
        engine.add_request(Request(f"r{i}", tuple(range(3, 5 + i)), 3 + i))
    stats = []
    while engine.has_unfinished():
        stats.append(engine.step().stats)
    return stats


@pytest.mark.parametrize("async_scheduling", [True, False])
@pytest.mark.parametrize("name", ["naive", "paged"])
def test_each_step_gets_its_own_device_time(monkeypatch, name, async_scheduling):
    counter = itertools.count()
    fake = lambda device, timing=True: FakeEvent(next(counter))  # noqa: E731
    monkeypatch.setattr(engines.core.model_runner, "stream_event", fake)
    monkeypatch.setattr(engines.transfer, "stream_event", fake)
    stats = drive(fake_engine(name, async_scheduling=async_scheduling))
    computed = [s for s in stats if s.prefill_tokens + s.decode_tokens + s.wasted_decode_tokens]
    assert [s.device_ns for s in computed] == [(4 * k + 1) * 1_000_000 for k in range(len(computed))]
    assert all(s.device_ns is None for s in stats if s not in computed)  # the collecting step


def test_without_step_timing_no_step_is_timed(monkeypatch):
    timed = []

    def fake(device, timing=True):
        timed.append(timing)
        return FakeEvent(len(timed))

    monkeypatch.setattr(engines.core.model_runner, "stream_event", fake)
    monkeypatch.setattr(engines.transfer, "stream_event", fake)
    stats = drive(fake_engine("paged", step_timing=False))
    assert all(s.device_ns is None for s in stats)
    assert timed and not any(timed)  # only the untimed events the tokens wait on


def test_a_cpu_step_has_no_device_time():
    stats = drive(fake_engine("paged"))
    assert stats and all(s.device_ns is None for s in stats)
