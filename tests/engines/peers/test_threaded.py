"""The threaded-engine base: streaming hand-over, one end per request, abort, and failures of
the library thread that must end requests rather than hang the harness. A scripted library
(no model) stands in for transformers."""

from __future__ import annotations

import queue
import threading
import time

import pytest

from engines.peers.threaded import ThreadedEngine
from engines.request import ConfigError, Request, RequestError
from tests.engines.peers.conftest import collect


class ScriptedLibrary(ThreadedEngine):
    """Emits token i of a request as the number i, one per `delay_s`, on its worker thread.
    A request named in `fail_on` makes the worker raise; `exit_on` makes it return silently."""

    def __init__(self, delay_s=0.002, fail_on=None, exit_on=None):
        super().__init__("scripted", vocab_size=100, max_model_len=64, options={"delay_s": delay_s}, model_info=None)
        self.delay_s = delay_s
        self.fail_on = fail_on
        self.exit_on = exit_on
        self.inbox: queue.Queue[Request] = queue.Queue()
        self.cancelled: set[str] = set()
        self.calls: list[str] = []
        self.start()

    def _submit(self, request):
        self.inbox.put(request)

    def _cancel(self, request_id):
        self.cancelled.add(request_id)

    def _work(self):
        while not self.stopping.is_set():
            try:
                r = self.inbox.get(timeout=0.01)
            except queue.Empty:
                continue
            if r.id == self.fail_on:
                raise RuntimeError("library broke")
            if r.id == self.exit_on:
                return
            for i in range(r.max_new_tokens):
                if r.id in self.cancelled or self.stopping.is_set():
                    break
                self.emit(r.id, [i], finished=i == r.max_new_tokens - 1)
                time.sleep(self.delay_s)

    def _interrupt(self):
        self.calls.append(f"interrupt alive={self._thread.is_alive()}")

    def _release(self):
        self.calls.append(f"release alive={self._thread.is_alive()}")


def req(rid, n=5, prompt=(1, 2, 3)):
    return Request(rid, tuple(prompt), n)


def run(engine, limit_s=20.0):
    """Step until nothing is unfinished: (tokens, statuses, errors, steps that carried tokens).
    Every step: no engine counters (a library thread has none), one event per request."""

    def check(step, out):
        assert out.stats is None
        ids = [ev.request_id for ev in out.events]
        assert len(ids) == len(set(ids)), "one event per request per step"

    return collect(engine, limit_s=limit_s, on_step=check)


def test_tokens_stream_and_every_request_ends_once():
    engine = ScriptedLibrary(delay_s=0.01)
    for rid, n in [("a", 6), ("b", 3), ("c", 1)]:
        engine.add_request(req(rid, n))
    tokens, status, _, carried = run(engine)
    assert tokens == {"a": list(range(6)), "b": list(range(3)), "c": [0]}
    assert status == {"a": "ok", "b": "ok", "c": "ok"}
    assert len(carried["a"]) >= 3, "tokens were handed over at the end instead of as produced"
    assert not engine.has_unfinished()
    engine.close()


def test_idle_step_returns_nothing_without_blocking():
    engine = ScriptedLibrary()
    start = time.monotonic()
    out = engine.step()
    assert out.events == [] and time.monotonic() - start < 1.0
    engine.close()


def test_abort_ends_the_request_once_and_drops_later_tokens():
    engine = ScriptedLibrary(delay_s=0.01)
    engine.add_request(req("long", 40))
    engine.add_request(req("short", 3))
    seen = []
    while not seen:
        seen = [ev for ev in engine.step().events if ev.request_id == "long" and ev.token_ids]
    engine.abort("long")
    engine.abort("never-added")  # no-op
    tokens, status, _, _ = run(engine)
    assert status == {"long": "cancelled", "short": "ok"}
    assert tokens.get("long", []) == [], "tokens of an aborted request arrived after its cancelled event"
    assert "long" in engine.cancelled, "the library was not told"
    engine.close()


def test_library_exception_ends_open_requests_with_its_message():
    engine = ScriptedLibrary(delay_s=0.01, fail_on="boom")
    engine.add_request(req("before", 2))
    engine.add_request(req("boom", 2))
    engine.add_request(req("after", 2))
    _, status, errors, _ = run(engine)
    assert status["before"] == "ok"
    assert status["boom"] == status["after"] == "error"
    assert "RuntimeError: library broke" in errors["after"]
    # the library is gone: a new request ends with the same error instead of waiting forever
    engine.add_request(req("late", 2))
    _, status, errors, _ = run(engine)
    assert status == {"late": "error"} and "library broke" in errors["late"]
    engine.close()


def test_worker_that_exits_silently_does_not_hang_the_harness():
    engine = ScriptedLibrary(exit_on="quit")
    engine.add_request(req("quit", 2))
    engine.add_request(req("other", 2))
    _, status, errors, _ = run(engine)
    assert status == {"quit": "error", "other": "error"}
    assert "exited unexpectedly" in errors["other"]
    engine.close()


def test_bad_and_duplicate_requests_are_refused_without_harm():
    engine = ScriptedLibrary()
    with pytest.raises(RequestError, match="outside the vocabulary"):
        engine.add_request(req("bad", 2, prompt=(1, 500)))
    with pytest.raises(RequestError, match="max_model_len=64"):
        engine.add_request(req("long", 60, prompt=(1,) * 10))
    engine.add_request(req("x", 30))
    with pytest.raises(RequestError, match="still running"):
        engine.add_request(req("x", 2))
    tokens, status, _, _ = run(engine)
    assert status == {"x": "ok"} and tokens["x"] == list(range(30))
    engine.close()
    with pytest.raises(ConfigError, match="closed"):
        engine.add_request(req("y", 2))


def test_close_interrupts_joins_then_releases():
    engine = ScriptedLibrary(delay_s=0.05)
    engine.add_request(req("slow", 50))
    engine.step()
    start = time.monotonic()
    engine.close()
    assert time.monotonic() - start < 5
    assert not engine._thread.is_alive()
    assert engine.calls == ["interrupt alive=True", "release alive=False"]
    engine.close()  # idempotent
    assert len(engine.calls) == 2
    # a request cut off by close() still ends, so a harness loop draining it cannot hang
    _, status, errors, _ = run(engine)
    assert status == {"slow": "error"} and "closed" in errors["slow"]
    assert not any(t.name == "scripted-worker" for t in threading.enumerate())


def test_describe_reports_a_peer():
    engine = ScriptedLibrary()
    info = engine.describe()
    assert info == {"name": "scripted", "kind": "peer", "options": {"delay_s": 0.002}, "model": None}
    engine.close()
