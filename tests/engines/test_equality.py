"""Every in-repo engine's greedy output equals transformers' `generate`, token for token, in
float32: the test that makes every speed number trustworthy.

One random workload per model (varied prompt and output lengths, half the prompts sharing a
40-token prefix) is generated once by transformers, one request at a time; each engine
configuration must reproduce it exactly, including when requests arrive while others run, when
prompts are longer than the token budget (chunked prefill), when the paged pool is far too small
(preemption and recompute), with prefix caching on, in longest-output-first order, with
paged admitting only what fits to the end, and with async scheduling on (the default:
inputs taken from the previous step's tokens on the device) and off.
"""

from __future__ import annotations

import pytest

from engines.registry import create_engine
from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

CONFIGS = {
    "naive": ("naive", dict(max_batch=6), 0),
    "naive-arrivals": ("naive", dict(max_batch=6), 3),
    "static": ("static", dict(max_batch=6), 0),
    "static-arrivals": ("static", dict(max_batch=6), 3),
    "continuous": ("continuous", dict(max_batch=8, token_budget=32), 0),  # prompts up to 140 > 32
    "continuous-arrivals": ("continuous", dict(max_batch=8, token_budget=32), 2),
    "paged": ("paged", dict(max_batch=16, token_budget=48, block_size=8), 0),
    "paged-arrivals": ("paged", dict(max_batch=16, token_budget=48, block_size=8), 2),
    "paged-tiny-pool": ("paged", dict(kv_tokens=192, max_model_len=192, block_size=8, token_budget=32), 0),
    "paged-prefix-cache": ("paged", dict(prefix_caching=True, block_size=8, token_budget=64), 2),
    "paged-prefix-cache-tiny-pool": (
        "paged", dict(prefix_caching=True, kv_tokens=192, max_model_len=192, block_size=8, token_budget=32), 1,
    ),
    # longest output first (every rung shares the queue), and paged admitting only what can
    # finish without preemption
    "static-lof": ("static", dict(max_batch=6, queue_order="lof"), 0),
    "paged-lof-tiny-pool": (
        "paged", dict(kv_tokens=192, max_model_len=192, block_size=8, token_budget=32, queue_order="lof"), 0,
    ),
    "paged-lof-reserve": (
        "paged", dict(kv_tokens=256, max_model_len=192, block_size=8, token_budget=32, queue_order="lof",
                      admission="reserve"), 2,
    ),
    # the step loop without async scheduling: each step resolved before the next is planned
    "naive-sync": ("naive", dict(max_batch=6, async_scheduling=False), 3),
    "continuous-sync": ("continuous", dict(max_batch=8, token_budget=32, async_scheduling=False), 2),
    "paged-tiny-pool-sync": (
        "paged", dict(kv_tokens=192, max_model_len=192, block_size=8, token_budget=32, async_scheduling=False), 0,
    ),
}

MODELS = ["tiny", "tiny-qwen3"]


@pytest.fixture(scope="module", params=MODELS)
def reference(request):
    model = request.param
    requests = random_requests(18, seed=7, vocab=2048, prompt=(2, 100), output=(1, 48), prefix=(0.5, 40))
    return model, requests, hf_generate(hf_model(model), requests)


@pytest.mark.parametrize("config", list(CONFIGS))
def test_engine_equals_generate(reference, config):
    model, requests, expected = reference
    name, options, add_every = CONFIGS[config]
    engine = create_engine(name, model=model, device="cpu", dtype="float32", **options)
    tokens, status, stats = drive(engine, requests, add_every=add_every)

    mismatched = [r.id for r in requests if tokens[r.id] != expected[r.id]]
    assert not mismatched, f"{config}: outputs differ from generate for {mismatched}"
    assert set(status.values()) == {"ok"} and len(status) == len(requests)
    assert engine.kv.is_idle(), "KV memory still held after the run"
    assert not engine.has_unfinished()
    if "tiny-pool" in config:
        assert sum(s.preemptions for s in stats) > 0, "the small pool was meant to force preemptions"
        assert sum(s.recomputed_tokens for s in stats) > 0
    if "prefix-cache" in config:
        assert sum(s.prefix_cache_hit_tokens for s in stats) > 0, "shared prefixes were meant to hit"
    if name in ("continuous", "paged") and options.get("token_budget"):
        assert max(s.prefill_tokens + s.decode_tokens for s in stats) <= options["token_budget"]
