"""Engine options queue_order ("fcfs", "lof") and paged's admission ("on-demand", "reserve"),
driven through the real step loop with the model-free runner."""

from __future__ import annotations

import pytest

from engines.core.build import build_engine
from engines.request import ConfigError, Request
from tests.engines.fakes import fake_engine, fake_token
from tests.engines.test_paged_policy import _running


def _request(rid: str, prompt_len: int, max_new: int) -> Request:
    return Request(rid, tuple(range(3, 3 + prompt_len)), max_new)


@pytest.mark.parametrize("name", ["naive", "static", "continuous", "paged"])
def test_lof_admits_the_longest_output_first_ties_in_arrival_order(name):
    engine = fake_engine(name, max_batch=1, token_budget=16, queue_order="lof")
    lengths = {"a": 3, "b": 9, "c": 5, "d": 9, "e": 2}
    for rid, max_new in lengths.items():
        engine.add_request(_request(rid, 4, max_new))
    assert [s.id for s in engine.policy.waiting] == ["b", "d", "c", "a", "e"]
    started, tokens = [], {rid: [] for rid in lengths}
    while engine.has_unfinished():
        out = engine.step()
        started += [s.id for s in engine.policy.running if s.id not in started]
        for ev in out.events:
            tokens[ev.request_id] += ev.token_ids
    assert started == ["b", "d", "c", "a", "e"]
    assert tokens == {rid: [fake_token(rid, i) for i in range(n)] for rid, n in lengths.items()}


def test_fcfs_keeps_arrival_order():
    engine = fake_engine("paged", queue_order="fcfs")
    for rid, max_new in [("a", 3), ("b", 9), ("c", 5)]:
        engine.add_request(_request(rid, 4, max_new))
    assert [s.id for s in engine.policy.waiting] == ["a", "b", "c"]


def test_lof_keeps_a_preempted_request_ahead_of_longer_new_ones():
    # B is preempted (it was admitted already): under lof it must stay at the front of the
    # queue even when a request with a larger max_new_tokens arrives after it.
    engine = fake_engine("paged", max_batch=4, token_budget=8, block_size=4, num_blocks=4, max_model_len=16,
                         queue_order="lof")
    _running(engine, _request("A", 11, 4), computed=11, output=1)
    b = _running(engine, _request("B", 4, 8), computed=4, output=1)
    plan = engine.policy.schedule()
    assert plan.preempted == [b]
    engine.add_request(_request("C", 2, 12))  # longer output than B's, arrives later
    engine.add_request(_request("D", 2, 2))
    assert [s.id for s in engine.policy.waiting] == ["B", "C", "D"]


def _run_all(engine, requests, max_steps: int = 2000):
    """Add the requests, step to the end (checking the KV manager and the reserve accounting
    after every step): (tokens per request, preemptions, peak running, peak committed blocks)."""
    for r in requests:
        engine.add_request(r)
    tokens: dict[str, list[int]] = {r.id: [] for r in requests}
    preemptions = peak_running = peak_committed = 0
    for _ in range(max_steps):
        if not engine.has_unfinished():
            break
        out = engine.step()
        engine.kv.check_invariants()
        policy = engine.policy
        assert policy.committed_blocks == sum(policy._blocks_at_most(s) for s in policy.running)
        preemptions += out.stats.preemptions
        peak_running = max(peak_running, out.stats.running)
        peak_committed = max(peak_committed, policy.committed_blocks)
        for ev in out.events:
            tokens.setdefault(ev.request_id, []).extend(ev.token_ids)
    else:
        raise AssertionError(f"no end after {max_steps} steps")
    return tokens, preemptions, peak_running, peak_committed


def test_reserve_admission_never_preempts_where_on_demand_does():
    # Six requests whose prompts fit the pool together but whose outputs do not: on-demand
    # admits them all and has to preempt as they grow; reserve admits only what can finish.
    kw = dict(max_batch=8, token_budget=64, block_size=4, num_blocks=12, max_model_len=32)
    requests = [_request(f"r{i}", 6, 14) for i in range(6)]  # 20 tokens = 5 blocks at most each
    expected = {r.id: [fake_token(r.id, i) for i in range(14)] for r in requests}
    seen = {}
    for admission in ("on-demand", "reserve"):
        engine = fake_engine("paged", admission=admission, **kw)
        tokens, preemptions, peak_running, _ = _run_all(engine, requests)
        assert tokens == expected
        assert engine.policy.committed_blocks == 0 and engine.kv.is_idle()
        seen[admission] = (preemptions, peak_running)
    assert seen["on-demand"][0] > 0
    assert seen["reserve"] == (0, 2)  # 2 x 5 blocks fit in 12; a third would not


def test_reserve_admission_accounts_finished_and_aborted_requests():
    engine = fake_engine("paged", max_batch=8, token_budget=64, block_size=4, num_blocks=12, max_model_len=32,
                         admission="reserve")
    requests = [_request(f"r{i}", 5, 3 + 2 * i) for i in range(5)]
    for r in requests:
        engine.add_request(r)
    engine.step()
    running = {s.id for s in engine.policy.running}
    assert "r0" in running and engine.policy.committed_blocks == sum(
        engine.policy._blocks_at_most(s) for s in engine.policy.running)
    engine.abort("r0")
    assert engine.policy.committed_blocks == sum(engine.policy._blocks_at_most(s) for s in engine.policy.running)
    _, _, _, peak = _run_all(engine, [])
    assert 0 < peak <= 12
    assert engine.policy.committed_blocks == 0 and not engine.policy.running


@pytest.mark.parametrize("option, value, expected", [
    ("queue_order", "sjf", "option queue_order must be one of fcfs, lof, got 'sjf'"),
    ("admission", "eager", "option admission must be one of on-demand, reserve, got 'eager'"),
])
def test_bad_values_are_named(option, value, expected):
    with pytest.raises(ConfigError, match=expected):
        build_engine("paged", "tiny", device="cpu", **{option: value})


@pytest.mark.parametrize("name", ["naive", "static", "continuous"])
def test_reserve_admission_is_paged_only(name):
    with pytest.raises(ConfigError, match=f"admission='reserve' is a paged KV cache's choice; engine '{name}'"):
        build_engine(name, "tiny", device="cpu", admission="reserve")


def test_lof_and_reserve_together_run_every_request_to_its_end():
    engine = fake_engine("paged", admission="reserve", queue_order="lof")
    requests = [_request(f"r{i}", 3 + i, 1 + i) for i in range(4)]
    tokens, preemptions, _, _ = _run_all(engine, requests)
    assert tokens == {r.id: [fake_token(r.id, i) for i in range(r.max_new_tokens)] for r in requests}
    assert preemptions == 0 and not engine._seqs and engine.kv.is_idle()
