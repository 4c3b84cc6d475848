from __future__ import annotations

import random

import pytest

from workloads.build import build_workload
from workloads.errors import WorkloadError

LLAMA3 = dict(vocab_size=128_256, max_model_len=8192)


def test_anchor_a_totals_match_metrics_md():
    wl = build_workload("anchor-a", **LLAMA3)
    assert len(wl.requests) == 256 and wl.mode == "offline"
    assert sum(len(r.prompt_ids) for r in wl.requests) == 138_199
    assert sum(r.max_new_tokens for r in wl.requests) == 65_940
    assert all(r.arrival_s == 0 and r.sampling.greedy and r.stop_token_ids == () for r in wl.requests)


def test_anchor_a_first_request_is_the_first_draws_of_random_0():
    rng = random.Random(0)
    prompt_len, output_len = rng.randint(64, 1024), rng.randint(16, 512)
    first_ids = tuple(rng.randrange(3, 128_000) for _ in range(prompt_len))
    r0 = build_workload("anchor-a", **LLAMA3).requests[0]
    assert (len(r0.prompt_ids), r0.max_new_tokens) == (prompt_len, output_len) == (928, 213)
    assert r0.prompt_ids == first_ids


def test_anchor_a_ignores_the_seed_and_is_stable():
    a = build_workload("anchor-a", **LLAMA3)
    assert a.content_hash == build_workload("anchor-a", seed=5, **LLAMA3).content_hash


def test_anchor_a_refuses_a_small_vocabulary_and_context():
    with pytest.raises(WorkloadError, match="needs a vocabulary of at least 128,000; this model has 2,048"):
        build_workload("anchor-a", vocab_size=2048, max_model_len=2048)
    with pytest.raises(WorkloadError, match=r"needs max_model_len >= 1491; this model has 1024"):
        build_workload("anchor-a", vocab_size=128_256, max_model_len=1024)


def test_anchor_a_takes_only_an_arrival_override():
    wl = build_workload("anchor-a:arrival=poisson(50)", **LLAMA3)
    assert wl.mode == "open" and sum(r.max_new_tokens for r in wl.requests) == 65_940
    with pytest.raises(WorkloadError, match="key 'num_requests' does not apply to source 'anchor-a'"):
        build_workload("anchor-a:num_requests=10", **LLAMA3)
