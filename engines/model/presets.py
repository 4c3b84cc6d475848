"""Named model shapes, built as transformers configs with random weights (no download).

Shapes of the real models are copied from their published config.json files; only the weights
are random. `tiny*` presets are small enough for 2 CPU cores and cover each architecture
variant the forward supports (Llama, Mistral's sliding window, Qwen2's attention bias, Qwen3's
q/k norm), so that tests check every variant against transformers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import AutoConfig, PretrainedConfig

from engines.request import ConfigError

_LLAMA3_ROPE = {
    "rope_type": "llama3",
    "low_freq_factor": 1.0,
    "high_freq_factor": 4.0,
    "original_max_position_embeddings": 8192,
}

# A random-weight model samples almost uniformly from the vocabulary; an initializer range
# wider than the usual 0.02 gives its logits real gaps, so greedy outputs are not decided by
# rounding (the equality tests against transformers rely on this).
_TINY = dict(
    hidden_size=128,
    intermediate_size=384,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=2048,
    max_position_embeddings=2048,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=True,
    initializer_range=0.1,
    bos_token_id=1,
    eos_token_id=2,
)


@dataclass(frozen=True)
class Preset:
    model_type: str
    summary: str
    config: dict = field(default_factory=dict)

    def build_config(self) -> PretrainedConfig:
        return AutoConfig.for_model(self.model_type, **self.config)


PRESETS: dict[str, Preset] = {
    "tiny": Preset("llama", "Llama, 1M params, 4 layers, GQA 4/2 heads: fast on 2 CPU cores", _TINY),
    "tiny-qwen3": Preset(
        "qwen3", "Qwen3 shape in miniature (q/k RMSNorm, explicit head_dim)", {**_TINY, "head_dim": 32}
    ),
    "tiny-qwen2": Preset("qwen2", "Qwen2 shape in miniature (q/k/v bias)", _TINY),
    "tiny-mistral": Preset(
        "mistral",
        "Mistral shape in miniature (sliding-window attention, window 64)",
        {**_TINY, "sliding_window": 64, "tie_word_embeddings": False},
    ),
    "llama-1b": Preset(
        "llama",
        "Llama 3.2 1B shape: hidden 2048, 16 layers, 32/8 heads, FFN 8192, vocab 128256, tied",
        dict(
            hidden_size=2048,
            intermediate_size=8192,
            num_hidden_layers=16,
            num_attention_heads=32,
            num_key_value_heads=8,
            head_dim=64,
            vocab_size=128256,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            rope_theta=500000.0,
            rope_scaling={**_LLAMA3_ROPE, "factor": 32.0},
            tie_word_embeddings=True,
            bos_token_id=128000,
            eos_token_id=128001,
        ),
    ),
    "llama-8b": Preset(
        "llama",
        "Llama 3.1 8B shape: hidden 4096, 32 layers, 32/8 heads, FFN 14336, vocab 128256",
        dict(
            hidden_size=4096,
            intermediate_size=14336,
            num_hidden_layers=32,
            num_attention_heads=32,
            num_key_value_heads=8,
            vocab_size=128256,
            max_position_embeddings=131072,
            rms_norm_eps=1e-5,
            rope_theta=500000.0,
            rope_scaling={**_LLAMA3_ROPE, "factor": 8.0},
            tie_word_embeddings=False,
            bos_token_id=128000,
            eos_token_id=128001,
        ),
    ),
    "qwen3-0.6b": Preset(
        "qwen3",
        "Qwen3 0.6B shape: hidden 1024, 28 layers, 16/8 heads of 128, FFN 3072, vocab 151936, tied",
        dict(
            hidden_size=1024,
            intermediate_size=3072,
            num_hidden_layers=28,
            num_attention_heads=16,
            num_key_value_heads=8,
            head_dim=128,
            vocab_size=151936,
            max_position_embeddings=40960,
            rms_norm_eps=1e-6,
            rope_theta=1000000.0,
            tie_word_embeddings=True,
            bos_token_id=151643,
            eos_token_id=151645,
        ),
    ),
}


def preset_config(name: str) -> PretrainedConfig:
    preset = PRESETS.get(name)
    if preset is None:
        raise ConfigError(
            f"unknown model preset {name!r}; presets: {', '.join(PRESETS)} "
            "(or give a local Hugging Face checkpoint directory)"
        )
    return preset.build_config()
