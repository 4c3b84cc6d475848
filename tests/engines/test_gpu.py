"""On a CUDA GPU: the Triton attention and the CUDA-graph decode path keep every in-repo
engine's float32 greedy output equal to transformers' `generate` on the same GPU."""

from __future__ import annotations

import pytest
import torch

from engines.registry import create_engine
from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

pytestmark = pytest.mark.gpu

REQUESTS = random_requests(24, seed=5, vocab=2048, prompt=(2, 200), output=(1, 64), prefix=(0.5, 48))


@pytest.fixture(scope="module", params=["tiny", "tiny-qwen3"])
def reference(request):
    hf = hf_model(request.param).to("cuda")
    return request.param, hf_generate(hf, REQUESTS, device="cuda")


@pytest.mark.parametrize(
    "name,options",
    [
        ("naive", dict(max_batch=8)),
        ("static", dict(max_batch=8)),
        ("continuous", dict(max_batch=12, token_budget=64)),
        ("paged", dict(max_batch=24, token_budget=64)),
        ("paged", dict(kv_tokens=512, max_model_len=320, token_budget=64, prefix_caching=True)),
    ],
)
def test_gpu_engines_equal_generate_in_float32(reference, name, options):
    model, expected = reference
    engine = create_engine(name, model=model, device="cuda", dtype="float32", **options)
    info = engine.describe()["options"]
    assert info["attention"] == "triton" and info["cuda_graphs"] is True
    tokens, status, stats = drive(engine, REQUESTS, add_every=2)
    assert {r.id: tokens[r.id] for r in REQUESTS} == expected
    assert engine.kv.is_idle()
    engine.close()
