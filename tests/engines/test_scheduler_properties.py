"""Property-based tests of the four policies and their KV managers, driven through the real
step loop with a model-free runner: random workloads, arrivals and aborts; the invariants are
checked after every step."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engines.request import Request
from tests.engines.fakes import fake_engine, fake_token


@st.composite
def scenarios(draw):
    name = draw(st.sampled_from(["naive", "static", "continuous", "paged"]))
    block_size = draw(st.sampled_from([1, 2, 4, 8]))
    max_model_len = draw(st.integers(8, 48))
    blocks_for_one = -(-2 * max_model_len // block_size)  # a naive row can be 2x max_model_len
    num_blocks = draw(st.integers(blocks_for_one, 4 * blocks_for_one))
    max_batch = draw(st.integers(1, 6))
    options = dict(
        max_batch=max_batch,
        token_budget=draw(st.integers(max_batch, 24)),
        block_size=block_size,
        num_blocks=num_blocks,
        max_model_len=max_model_len,
        prefix_caching=name == "paged" and draw(st.booleans()),
        async_scheduling=draw(st.booleans()),
        queue_order=draw(st.sampled_from(["fcfs", "lof"])),
        admission=draw(st.sampled_from(["on-demand", "reserve"])) if name == "paged" else "on-demand",
    )
    n = draw(st.integers(1, 12))
    shared = draw(st.lists(st.integers(3, 20), min_size=0, max_size=12))  # a common prefix
    requests, arrivals, aborts = [], [], {}
    for i in range(n):
        prompt_len = draw(st.integers(1, max_model_len - 1))
        tail = draw(st.lists(st.integers(3, 999), min_size=prompt_len, max_size=prompt_len))
        ids = (shared + tail)[:prompt_len] if draw(st.booleans()) else tail
        max_new = draw(st.integers(1, max_model_len - prompt_len))
        # some requests stop early, on the token they would produce at a drawn index
        stop_at = draw(st.one_of(st.none(), st.integers(0, max_new - 1)))
        stop = () if stop_at is None else (fake_token(f"q{i}", stop_at),)
        requests.append(Request(f"q{i}", tuple(ids), max_new, stop_token_ids=stop))
        arrivals.append(draw(st.integers(0, 20)))
        if draw(st.integers(0, 9)) == 0:
            aborts[f"q{i}"] = draw(st.integers(0, 30))
    return name, options, requests, arrivals, aborts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_policies_keep_their_invariants(scenario):
    name, options, requests, arrivals, aborts = scenario
    engine = fake_engine(name, **options)
    by_step: dict[int, list[Request]] = {}
    for r, t in zip(requests, arrivals):
        by_step.setdefault(t, []).append(r)
    tokens = {r.id: [] for r in requests}
    final: dict[str, str] = {}
    added: set[str] = set()
    step = 0
    while step <= max(arrivals) or engine.has_unfinished():
        for r in by_step.get(step, []):
            engine.add_request(r)
            added.add(r.id)
        for rid, at in aborts.items():
            if at == step and rid in added:
                engine.abort(rid)
        out = engine.step()
        engine.kv.check_invariants()
        s = out.stats
        assert s.num_seqs <= options["max_batch"]
        if name in ("continuous", "paged"):
            assert s.prefill_tokens + s.decode_tokens <= options["token_budget"]
            assert s.padded_tokens == s.wasted_decode_tokens == 0
        if name != "naive":
            assert s.padded_tokens == s.wasted_decode_tokens == 0
        if name != "paged" or options["admission"] == "reserve":
            assert s.preemptions == 0
        assert 0 <= s.kv_tokens_used <= s.kv_tokens_reserved <= s.kv_tokens_capacity
        for ev in out.events:
            assert ev.request_id not in final, f"{ev.request_id} got events after finishing"
            tokens[ev.request_id] += ev.token_ids
            if ev.finished:
                final[ev.request_id] = ev.status
        step += 1
        assert step < 5000, "no progress"

    # No request is lost: each ended exactly once, with all its tokens or as cancelled.
    assert set(final) == {r.id for r in requests}
    for r in requests:
        expected = [fake_token(r.id, i) for i in range(r.max_new_tokens)]
        stops = [i for i, t in enumerate(expected) if t in r.stop_token_ids]
        if stops:
            expected = expected[: stops[0] + 1]  # up to and including the first stop token
        if final[r.id] == "ok":
            assert tokens[r.id] == expected, "a token was skipped, repeated or reordered"
        else:
            assert final[r.id] == "cancelled" and r.id in aborts
            assert tokens[r.id] == expected[: len(tokens[r.id])]
    assert engine.kv.is_idle(), "KV memory not returned after the run"
    assert not engine.policy.waiting and not engine.policy.running
