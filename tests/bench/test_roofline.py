"""The roofline bound: parameter counts, the exact counting, and METRICS.md's anchor-a numbers."""

from __future__ import annotations

import json
import math
import random
import time

import pytest
import torch

from bench.ceilings import Ceilings, device_key, measure_ceilings
from bench.roofline import ModelShape, dtype_bytes, roofline_bound, with_efficiency

H200 = Ceilings(bw_bytes_per_s=4265e9, flops_per_s=799e12, source="METRICS.md")

LLAMA_8B = {
    "model_type": "llama", "num_hidden_layers": 32, "hidden_size": 4096, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 14336, "vocab_size": 128256,
    "tie_word_embeddings": False,
}
LLAMA_1B = {
    "model_type": "llama", "num_hidden_layers": 16, "hidden_size": 2048, "num_attention_heads": 32,
    "num_key_value_heads": 8, "intermediate_size": 8192, "vocab_size": 128256,
    "tie_word_embeddings": True,
}


def anchor_a_lengths() -> tuple[list[int], list[int]]:
    """METRICS.md's anchor-a: per request prompt length, output length, then the prompt ids,
    all from one random.Random(0) (the ids must be drawn to keep the stream in step)."""
    rng = random.Random(0)
    prompts, outputs = [], []
    for _ in range(256):
        p, o = rng.randint(64, 1024), rng.randint(16, 512)
        for _ in range(p):
            rng.randrange(3, 128000)
        prompts.append(p)
        outputs.append(o)
    return prompts, outputs


def test_anchor_a_totals_match_metrics_md():
    prompts, outputs = anchor_a_lengths()
    assert (sum(prompts), sum(outputs)) == (138_199, 65_940)


def test_anchor_a_8b_on_h200_is_3_90_s_compute_bound():
    prompts, outputs = anchor_a_lengths()
    bound = roofline_bound(ModelShape.from_config(LLAMA_8B), 2, prompts, outputs, H200)
    assert round(bound["t_min_s"], 2) == 3.90
    assert bound["bound"] == "compute"
    # METRICS.md: 16.9k output tok/s
    assert round(65_940 / bound["t_min_s"], -2) == 16_900


def test_anchor_a_1b_on_h200_is_0_66_s_memory_bound():
    prompts, outputs = anchor_a_lengths()
    bound = roofline_bound(ModelShape.from_config(LLAMA_1B), 2, prompts, outputs, H200)
    assert round(bound["t_min_s"], 2) == 0.66
    assert bound["bound"] == "memory"
    assert round(65_940 / bound["t_min_s"], -3) == 100_000


def test_llama_8b_parameter_counts():
    shape = ModelShape.from_config(LLAMA_8B)
    # per layer: q 4096*4096 + k, v 2*4096*1024 + o 4096*4096 = 41,943,040;
    # mlp 3*4096*14336 = 176,160,768; norms 2*4096 = 8,192  -> 218,112,000
    assert shape.layer_params == 218_112_000
    assert shape.non_embedding_params == 32 * 218_112_000 + 4096
    assert shape.lm_head_params == 525_336_576  # 128256*4096
    assert shape.total_params == 8_030_261_248  # Llama 3 8B's published count


def test_tied_embedding_counts_once_as_lm_head():
    shape = ModelShape.from_config(LLAMA_1B)
    assert shape.embedding_params == 0
    assert shape.total_params == 1_235_814_400  # Llama 3.2 1B's published count
    assert shape.matmul_params == shape.total_params


def test_counting_on_a_tiny_case_by_hand():
    # 1 layer, hidden 4, 2 heads of 2, 1 kv head, ffn 8, vocab 10, untied
    shape = ModelShape(num_layers=1, hidden_size=4, num_heads=2, num_kv_heads=1, head_dim=2,
                       intermediate_size=8, vocab_size=10)
    # layer: q 16 + k,v 2*4*2=16 + o 16 + mlp 3*4*8=96 + norms 8 = 152; + final norm 4 = 156
    assert shape.non_embedding_params == 156
    assert shape.matmul_params == 196  # + lm head 40
    # one request, prompt 3, output 3: the matrix term counts 3 + 3 = 6 tokens (METRICS.md),
    # 5 are consumed (K/V written); two decode steps
    # attention pairs: prompt 3*4/2 = 6, decode steps see 4 and 5 keys -> 6 + 9 = 15
    # flops = 2*196*6 + 4*1*2*2*15 = 2352 + 240 = 2592
    # kv per token: 2*1*1*2 = 4 elements, 8 bytes at 2 bytes
    # bytes = weights 196*2*3 + kv read (3 + 4 cached) * 8 + kv written 5 * 8 = 1176 + 56 + 40
    ceilings = Ceilings(bw_bytes_per_s=1000.0, flops_per_s=1000.0, source="test")
    bound = roofline_bound(shape, 2, [3], [3], ceilings)
    assert bound["flops"] == 2592
    assert bound["bytes"] == 1272
    assert bound["t_min_s"] == pytest.approx(2.592)
    assert bound["bound"] == "compute"
    assert bound["ceilings"] == {"bw_bytes_per_s": 1000.0, "flops_per_s": 1000.0, "source": "test"}


def test_single_output_token_has_no_decode_step():
    shape = ModelShape(num_layers=1, hidden_size=4, num_heads=2, num_kv_heads=1, head_dim=2,
                       intermediate_size=8, vocab_size=10)
    bound = roofline_bound(shape, 2, [3], [1], Ceilings(1.0, 1.0, "t"))
    # flops = 2*196*4 + 4*2*2*6 = 1568 + 96; bytes = 196*2*1 + 0 read + 3*8 written
    assert bound["flops"] == 1664
    assert bound["bytes"] == 416


@pytest.mark.parametrize("model_type, extra, cls_name", [
    ("llama", {}, "LlamaForCausalLM"),
    ("llama", {"tie_word_embeddings": True}, "LlamaForCausalLM"),
    ("qwen2", {}, "Qwen2ForCausalLM"),
    ("qwen3", {"head_dim": 16}, "Qwen3ForCausalLM"),
    ("mistral", {}, "MistralForCausalLM"),
])
def test_parameter_count_matches_transformers(model_type, extra, cls_name):
    import transformers

    kwargs = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                  intermediate_size=96, vocab_size=300, tie_word_embeddings=False)
    kwargs.update(extra)
    config = transformers.AutoConfig.for_model(model_type, **kwargs)
    model = getattr(transformers, cls_name)(config)
    real = sum(p.numel() for p in model.parameters())  # tied weights appear once here
    assert ModelShape.from_config(config).total_params == real
    assert ModelShape.from_config(config.to_dict()).total_params == real


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="intermediate_size"):
        ModelShape.from_config({k: v for k, v in LLAMA_8B.items() if k != "intermediate_size"})
    with pytest.raises(ValueError, match="num_kv_heads 5"):
        ModelShape.from_config({**LLAMA_8B, "num_key_value_heads": 5})
    with pytest.raises(ValueError, match="num_layers = 0"):
        ModelShape.from_config({**LLAMA_8B, "num_hidden_layers": 0})


def test_bad_lengths_are_refused():
    shape = ModelShape.from_config(LLAMA_1B)
    with pytest.raises(ValueError, match="output_lens contains 0"):
        roofline_bound(shape, 2, [5], [0], H200)
    with pytest.raises(ValueError, match="2 prompt lengths and 1 output"):
        roofline_bound(shape, 2, [5, 6], [3], H200)


def test_dtype_bytes():
    assert dtype_bytes(torch.bfloat16) == 2
    assert dtype_bytes("bf16") == dtype_bytes("torch.bfloat16") == 2
    assert dtype_bytes("float32") == 4
    with pytest.raises(ValueError, match="'complex7'"):
        dtype_bytes("complex7")


def test_with_efficiency():
    bound = {"t_min_s": 0.5, "bound": "memory", "flops": 1, "bytes": 2, "ceilings": {}}
    assert with_efficiency(bound, 2.0)["efficiency"] == 0.25
    assert with_efficiency(bound, None)["efficiency"] is None
    assert with_efficiency(bound, 0.0)["efficiency"] is None
    assert "efficiency" not in bound  # not modified in place


def test_measure_ceilings_on_cpu_is_fast_and_cached(tmp_path, monkeypatch):
    cache = tmp_path / "sub" / "ceilings.json"
    t0 = time.perf_counter()
    first = measure_ceilings("cpu", cache_path=cache)
    assert time.perf_counter() - t0 < 2.0
    assert first.source == "measured-cpu"
    # a 2-core CPU copies at GB/s, not bytes/s or PB/s; multiplies at GFLOP/s
    assert 1e8 < first.bw_bytes_per_s < 1e13
    assert 1e8 < first.flops_per_s < 1e14
    stored = json.loads(cache.read_text())
    assert stored[device_key(torch.device("cpu"))]["bw_bytes_per_s"] == first.bw_bytes_per_s

    # the second call reads the cache and measures nothing
    def no_measuring(device):
        raise AssertionError("measured although cached")

    monkeypatch.setattr("bench.ceilings._measure", no_measuring)
    assert measure_ceilings("cpu", cache_path=cache) == first
    # a user-given value overrides one field and keeps the other
    mixed = measure_ceilings("cpu", cache_path=cache, flops_per_s=5e11)
    assert (mixed.bw_bytes_per_s, mixed.flops_per_s, mixed.source) == (first.bw_bytes_per_s, 5e11, "measured-cpu+user")
    assert measure_ceilings("cpu", cache_path=cache, bw_bytes_per_s=1e9, flops_per_s=2e9) == Ceilings(1e9, 2e9, "user")


def test_broken_cache_is_measured_again(tmp_path):
    cache = tmp_path / "ceilings.json"
    cache.write_text("{not json")
    with pytest.warns(UserWarning, match="unreadable ceilings cache"):
        ceilings = measure_ceilings("cpu", cache_path=cache)
    assert ceilings.source == "measured-cpu"
    assert json.loads(cache.read_text())  # rewritten whole


def test_bad_user_ceiling_is_refused_before_measuring():
    with pytest.raises(ValueError, match="flops_per_s = -1"):
        measure_ceilings("cpu", use_cache=False, flops_per_s=-1)
    with pytest.raises(ValueError, match="bw_bytes_per_s"):
        Ceilings(math.nan, 1.0, "user")


@pytest.mark.gpu
def test_measure_ceilings_on_cuda(tmp_path):
    ceilings = measure_ceilings("cuda", cache_path=tmp_path / "c.json")
    assert ceilings.source == "measured-cuda"
    assert ceilings.bw_bytes_per_s > 1e11 and ceilings.flops_per_s > 1e12
