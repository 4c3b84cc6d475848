"""Each step counts what its attention does (context read, query-key pairs scored), which the
bound of an engine's own steps (bench.roofline.steps_bound) is built on. Checked against
sums worked out from the requests' lengths alone."""

from __future__ import annotations

import pytest

from engines.registry import create_engine
from tests.engines.helpers import drive, random_requests

REQUESTS = random_requests(10, seed=5, vocab=2048, prompt=(4, 40), output=(1, 12))


def run(name, **options):
    engine = create_engine(name, model="tiny", device="cpu", max_batch=4, **options)
    _, status, stats = drive(engine, REQUESTS)
    assert set(status.values()) == {"ok"}
    assert sum(s.preemptions for s in stats) == 0  # a recomputed prompt would count twice
    return {k: sum(getattr(s, k) for s in stats) for k in ("context_tokens", "attention_pairs", "prefill_tokens")}


def causal_pairs(p: int, o: int) -> int:
    """A request's prompt scored causally, then decode step j (1..o-1) feeding position
    p + j - 1 against the p + j keys up to it."""
    return p * (p + 1) // 2 + sum(p + j for j in range(1, o))


def decode_context(p: int, o: int) -> int:
    """The cache entries decode step j reads before writing its own: p + j - 1."""
    return sum(p + j - 1 for j in range(1, o))


def test_unpadded_engines_score_each_causal_pair_once():
    lengths = [(len(r.prompt_ids), r.max_new_tokens) for r in REQUESTS]
    pairs = sum(causal_pairs(p, o) for p, o in lengths)
    context = sum(decode_context(p, o) for p, o in lengths)
    for name in ("static", "continuous", "paged"):
        counts = run(name)  # the default token budget takes every prompt whole
        assert (counts["attention_pairs"], counts["context_tokens"]) == (pairs, context), name


def test_chunked_prompts_read_their_earlier_chunks():
    lengths = [(len(r.prompt_ids), r.max_new_tokens) for r in REQUESTS]
    whole = run("paged")
    chunked = run("paged", token_budget=16)
    # the pairs do not depend on how a prompt is cut; a later chunk reads the earlier ones
    assert chunked["attention_pairs"] == whole["attention_pairs"] == sum(causal_pairs(p, o) for p, o in lengths)
    assert chunked["context_tokens"] > whole["context_tokens"]
    assert chunked["prefill_tokens"] == whole["prefill_tokens"]


def test_padded_batches_score_their_pads_and_finished_rows():
    # naive: batches of 4 in arrival order, each a rectangle of its longest prompt; every
    # row, finished or not, computes until the batch's longest request is done
    pairs = context = 0
    for start in range(0, len(REQUESTS), 4):
        batch = REQUESTS[start : start + 4]
        longest = max(len(r.prompt_ids) for r in batch)
        steps = max(r.max_new_tokens for r in batch)
        pairs += len(batch) * causal_pairs(longest, steps)
        context += len(batch) * decode_context(longest, steps)
    counts = run("naive")
    assert (counts["attention_pairs"], counts["context_tokens"]) == (pairs, context)


@pytest.mark.parametrize("name", ["naive", "paged"])
def test_every_computing_step_counts_its_attention(name):
    engine = create_engine(name, model="tiny", device="cpu", max_batch=4)
    _, _, stats = drive(engine, REQUESTS)
    for s in stats:
        computed = s.prefill_tokens + s.decode_tokens + s.padded_tokens + s.wasted_decode_tokens
        assert (s.attention_pairs > 0) == (computed > 0)
        assert s.attention_pairs >= computed  # each position scores at least itself
