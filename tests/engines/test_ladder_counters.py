"""The counters show the waste each rung of the ladder predicts, on varied lengths."""

from __future__ import annotations

import pytest

from engines.registry import create_engine
from tests.engines.helpers import drive, random_requests

REQUESTS = random_requests(24, seed=3, vocab=2048, prompt=(4, 60), output=(1, 40))


def totals(name, **options):
    engine = create_engine(name, model="tiny", device="cpu", max_batch=8, **options)
    _, status, stats = drive(engine, REQUESTS)
    assert set(status.values()) == {"ok"}
    keys = ["padded_tokens", "wasted_decode_tokens", "idle_slots", "preemptions", "decode_tokens", "prefill_tokens"]
    out = {k: sum(getattr(s, k) for s in stats) for k in keys}
    out["peak_running"] = max(s.running for s in stats)
    out["steps"] = len(stats)
    out["unused_kv"] = sum(s.kv_tokens_reserved - s.kv_tokens_used for s in stats)
    return out


@pytest.fixture(scope="module")
def ladder():
    return {name: totals(name) for name in ["naive", "static", "continuous", "paged"]}


def test_naive_wastes_padding_and_finished_rows(ladder):
    naive = ladder["naive"]
    assert naive["padded_tokens"] > 0 and naive["wasted_decode_tokens"] > 0
    # useful work is the same on every rung: every prompt token once, every output token but the last
    prompt = sum(len(r.prompt_ids) for r in REQUESTS)
    decodes = sum(r.max_new_tokens - 1 for r in REQUESTS)
    for counts in ladder.values():
        assert counts["prefill_tokens"] == prompt and counts["decode_tokens"] == decodes


def test_static_wastes_only_idle_slots(ladder):
    static = ladder["static"]
    assert static["padded_tokens"] == static["wasted_decode_tokens"] == 0
    assert static["idle_slots"] > 0


@pytest.mark.parametrize("name", ["continuous", "paged"])
def test_continuous_rungs_waste_none_of_these(ladder, name):
    counts = ladder[name]
    assert counts["padded_tokens"] == counts["wasted_decode_tokens"] == counts["idle_slots"] == 0
    assert counts["steps"] < ladder["static"]["steps"] < ladder["naive"]["steps"] + 1


def test_paged_holds_more_requests_than_continuous_in_the_same_memory():
    # 4 max-length regions of KV: continuous can run 4 requests, paged as many as fit.
    memory = dict(max_model_len=256, kv_tokens=4 * 256)
    continuous = totals("continuous", **memory)
    paged = totals("paged", **memory)
    assert continuous["peak_running"] == 4
    assert paged["peak_running"] > continuous["peak_running"]
    assert paged["steps"] < continuous["steps"]
    assert paged["unused_kv"] < continuous["unused_kv"]
