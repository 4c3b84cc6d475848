"""Hand-made situations for the paged policy that random workloads reach only rarely."""

from __future__ import annotations

from engines.core.sequence import Sequence, Status
from engines.request import Request
from tests.engines.fakes import fake_engine


def _running(engine, request: Request, computed: int, output: int = 0) -> Sequence:
    """Put a sequence into the running set as if earlier steps had computed `computed`
    tokens and sampled `output` tokens."""
    seq = Sequence(request, next(engine._order))
    seq.token_ids += [5] * output
    seq.num_computed = seq.cache_len = seq.max_computed = computed
    assert engine.kv.reserve(seq, computed)
    seq.status = Status.RUNNING
    engine.policy.running.append(seq)
    engine._seqs[request.id] = seq
    return seq


def test_preempting_a_sequence_that_already_had_a_chunk_refunds_it():
    # Older A is still prefilling; newer B is decoding and is planned first (decodes first).
    # A then needs a block the pool does not have: B, the newest, is preempted, and the
    # decode chunk it had been given this step must leave the plan.
    engine = fake_engine("paged", max_batch=4, token_budget=8, block_size=4, num_blocks=6, max_model_len=24)
    a = _running(engine, Request("A", tuple(range(3, 23)), 4), computed=12)  # 3 blocks
    b = _running(engine, Request("B", tuple(range(3, 10)), 8), computed=7, output=1)  # 2 blocks
    assert engine.kv.num_free_blocks() == 1
    plan = engine.policy.schedule()
    engine.kv.check_invariants()
    assert plan.preempted == [b]
    assert [(c.seq, c.num_tokens) for c in plan.chunks] == [(a, 7)]  # B's decode chunk is gone
    assert b.status is Status.WAITING and engine.policy.waiting[0] is b and not b.block_table
    assert b.num_computed == 0 and b.token_ids[-1] == 5  # its output is kept for recompute


def test_a_sequence_preempts_itself_when_it_is_the_newest():
    engine = fake_engine("paged", max_batch=4, token_budget=8, block_size=4, num_blocks=4, max_model_len=16)
    a = _running(engine, Request("A", tuple(range(3, 14)), 4), computed=11, output=1)  # 3 blocks, room left
    b = _running(engine, Request("B", tuple(range(3, 7)), 8), computed=4, output=1)  # 1 block, full
    plan = engine.policy.schedule()
    engine.kv.check_invariants()
    # B, the newest, needs a second block and nobody newer can give one back: B yields.
    assert plan.preempted == [b] and [c.seq for c in plan.chunks] == [a]
    assert b.status is Status.WAITING and not b.block_table and a.block_table


def test_no_admission_in_a_step_that_preempted():
    engine = fake_engine("paged", max_batch=4, token_budget=8, block_size=4, num_blocks=4, max_model_len=16)
    _running(engine, Request("A", tuple(range(3, 15)), 4), computed=12, output=1)
    _running(engine, Request("B", tuple(range(3, 7)), 8), computed=4, output=1)
    engine.add_request(Request("C", (3, 4), 2))
    plan = engine.policy.schedule()
    assert plan.preempted and all(c.seq.id != "C" for c in plan.chunks)
    assert [s.id for s in engine.policy.waiting] == ["B", "C"]  # the preempted one goes first
