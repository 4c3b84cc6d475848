"""The forward's other architecture variants against transformers: Qwen2 (q/k/v bias) and
Mistral (sliding-window attention, window 64 in the preset, prompts past it)."""

from __future__ import annotations

import pytest

from engines.registry import create_engine
from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

REQUESTS = random_requests(6, seed=11, vocab=2048, prompt=(60, 120), output=(8, 30))


@pytest.mark.parametrize("model", ["tiny-qwen2", "tiny-mistral"])
def test_paged_equals_generate(model):
    expected = hf_generate(hf_model(model), REQUESTS)
    engine = create_engine("paged", model=model, device="cpu", token_budget=48, block_size=8)
    tokens, _, _ = drive(engine, REQUESTS)
    assert tokens == expected


def test_the_sliding_window_is_what_makes_mistral_match():
    expected = hf_generate(hf_model("tiny-mistral"), REQUESTS)
    engine = create_engine("paged", model="tiny-mistral", device="cpu")
    layers = engine.runner.model.layers
    assert all(layer.window == 64 for layer in layers)
    for layer in layers:
        layer.window = None  # attend to the whole context instead
    tokens, _, _ = drive(engine, REQUESTS)
    assert tokens != expected
