"""Async scheduling: step t+1 is launched before step t's tokens reach the host. Tokens come
out one step later, exactly the same tokens; stop tokens found late cost one thrown-away
token, never an extra emitted one; aborts and preemptions while a token is on the way."""

from __future__ import annotations

import pytest

from engines.core.sequence import pending_token
from engines.request import Request
from tests.engines.fakes import fake_engine, fake_token

POLICIES = ["naive", "static", "continuous", "paged"]


def _run(engine, requests):
    for r in requests:
        engine.add_request(r)
    per_step, tokens, finished = [], {r.id: [] for r in requests}, {}
    while engine.has_unfinished():
        out = engine.step()
        per_step.append(out)
        for ev in out.events:
            assert ev.request_id not in finished
            tokens[ev.request_id] += ev.token_ids
            if ev.finished:
                finished[ev.request_id] = ev.status
        assert len(per_step) < 1000
    return per_step, tokens, finished


def _requests():
    return [Request(f"r{i}", tuple(range(3, 3 + 2 + i)), 3 + i) for i in range(5)]


@pytest.mark.parametrize("name", POLICIES)
def test_same_tokens_one_step_later(name):
    sync_steps, sync_tokens, _ = _run(fake_engine(name, async_scheduling=False), _requests())
    async_steps, async_tokens, status = _run(fake_engine(name), _requests())
    assert async_tokens == sync_tokens
    assert all(s == "ok" for s in status.values()) and len(status) == 5
    # the first step's tokens come out of the second call; the same plans, one step later
    assert any(ev.token_ids for ev in sync_steps[0].events)
    assert not async_steps[0].events
    assert [len(o.events) for o in async_steps[1:]] == [len(o.events) for o in sync_steps]
    assert [o.stats.num_seqs for o in async_steps[:-1]] == [o.stats.num_seqs for o in sync_steps]


@pytest.mark.parametrize("name", POLICIES)
def test_stop_token_found_late_emits_nothing_extra(name):
    engine = fake_engine(name)
    rid = "s"
    stop = fake_token(rid, 2)
    request = Request(rid, (5, 6, 7), 20, stop_token_ids=(stop,))
    _, tokens, status = _run(engine, [request])
    expected = [fake_token(rid, i) for i in range(20)]
    expected = expected[: expected.index(stop) + 1]
    assert tokens[rid] == expected and status == {rid: "ok"}
    assert engine.kv.is_idle() and not engine.policy.running


def test_pending_tokens_are_filled_in_once_resolved():
    engine = fake_engine("paged")
    engine.add_request(Request("a", (5, 6, 7), 4))
    engine.step()  # prefill launched: its token is pending
    seq = engine._seqs["a"]
    assert seq.token_ids[-1] == pending_token(0) < 0
    out = engine.step()  # decode launched with the pending token as input, prefill resolved
    assert out.events[0].token_ids == [fake_token("a", 0)]
    assert seq.token_ids[3] == fake_token("a", 0) and seq.token_ids[4] == pending_token(0)


@pytest.mark.parametrize("name", POLICIES)
def test_abort_while_a_token_is_on_the_way(name):
    engine = fake_engine(name)
    for r in _requests():
        engine.add_request(r)
    engine.step()
    engine.step()
    engine.abort("r4")  # its token from the step in flight must not come out
    events = []
    while engine.has_unfinished():
        events += engine.step().events
    r4 = [e for e in events if e.request_id == "r4"]
    assert len(r4) == 1 and r4[0].status == "cancelled"
    assert engine.kv.is_idle()
