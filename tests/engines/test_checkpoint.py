"""A local Hugging Face checkpoint (config.json + safetensors) loads and serves the same tokens
as transformers' generate on that checkpoint."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from engines.registry import create_engine
from tests.engines.helpers import drive, hf_generate, random_requests


@pytest.mark.parametrize("model_type", ["llama", "qwen2"])
def test_checkpoint_round_trip(tmp_path, model_type):
    torch.manual_seed(0)
    config = AutoConfig.for_model(
        model_type, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=512, max_position_embeddings=512, tie_word_embeddings=False,
        initializer_range=0.2,
    )
    hf = AutoModelForCausalLM.from_config(config).eval()
    hf.save_pretrained(tmp_path, safe_serialization=True)
    assert (tmp_path / "config.json").exists() and list(tmp_path.glob("*.safetensors"))

    requests = random_requests(5, seed=1, vocab=512, prompt=(3, 40), output=(1, 20))
    engine = create_engine("paged", model=str(tmp_path), device="cpu", dtype="float32")
    assert engine.describe()["model"]["path"] == str(tmp_path)
    tokens, status, _ = drive(engine, requests)
    assert tokens == hf_generate(hf, requests)
