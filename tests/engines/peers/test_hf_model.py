"""The transformers model of the peers is built on the meta device and takes over the loaded
tensors: nothing left on meta, computed RoPE buffers as in a normally built model, the tied
head sharing the embedding, and weights that do not fit refused by name."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from engines.model.weights import load_weights
from engines.peers.hf_model import build_hf_model
from engines.request import ConfigError


@pytest.mark.parametrize("preset", ["tiny", "tiny-mistral"])  # tied and untied heads
def test_model_takes_over_the_loaded_tensors(preset):
    weights = load_weights(preset, device="cpu", dtype="float32", seed=0)
    embed = weights.state_dict["model.embed_tokens.weight"]
    model = build_hf_model(weights)
    assert weights.state_dict == {}, "the state dict's tensors now belong to the model"
    assert not [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    assert model.model.embed_tokens.weight.data_ptr() == embed.data_ptr(), "weights were copied, not assigned"
    tied = weights.config.tie_word_embeddings
    assert (model.lm_head.weight.data_ptr() == embed.data_ptr()) == tied
    assert model.generation_config.eos_token_id is None

    reference = AutoModelForCausalLM.from_config(load_weights(preset, device="cpu", dtype="float32").config)
    reference_buffers = dict(reference.named_buffers())
    for name, buf in model.named_buffers():
        assert torch.equal(buf, reference_buffers[name]), f"{name} differs from a normally built model"
    assert model.config._attn_implementation == "sdpa"


def test_weights_that_do_not_fit_are_refused_by_name():
    weights = load_weights("tiny", device="cpu", dtype="float32")
    weights.state_dict["model.extra.weight"] = torch.zeros(2)
    del weights.state_dict["model.norm.weight"]
    with pytest.raises(ConfigError, match=r"missing \['model.norm.weight'\], unexpected \['model.extra.weight'\]"):
        build_hf_model(weights)
