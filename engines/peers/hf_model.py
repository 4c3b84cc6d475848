"""transformers' own model, holding the very tensors the in-repo engines load.

The model is built on the meta device (no memory, no random init) and the state dict from
engines.model.weights is assigned into it, so the peers run the same weights, in the same
dtype and on the same device, as the engines they are compared with, at no extra memory.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM

from engines.model.weights import ModelWeights
from engines.request import ConfigError


def build_hf_model(weights: ModelWeights, attn_implementation: str | None = "sdpa"):
    """An eval-mode AutoModelForCausalLM on weights.device; `weights.state_dict` is emptied
    (its tensors now belong to the model)."""
    kwargs = {"attn_implementation": attn_implementation} if attn_implementation else {}
    try:
        with torch.device("meta"):
            model = AutoModelForCausalLM.from_config(weights.config, **kwargs)
    except (ValueError, ImportError) as e:
        raise ConfigError(
            f"transformers cannot build {weights.name!r} with attn_implementation={attn_implementation!r}: {e}"
        ) from e
    missing, unexpected = model.load_state_dict(weights.state_dict, strict=False, assign=True)
    tied = bool(getattr(weights.config, "tie_word_embeddings", False))
    allowed_missing = {"lm_head.weight"} if tied else set()
    if unexpected or set(missing) - allowed_missing:
        raise ConfigError(
            f"model {weights.name!r}: weights do not fit transformers' {type(model).__name__}: "
            f"missing {sorted(set(missing) - allowed_missing)}, unexpected {sorted(unexpected)}"
        )
    weights.state_dict.clear()
    if tied:
        model.tie_weights()
    _materialise_buffers(model, weights.device)
    still_meta = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if still_meta:
        raise ConfigError(f"model {weights.name!r}: no values for {still_meta} after loading the weights")
    model.generation_config.eos_token_id = None  # benchmarks run every request to its length
    return model.eval().requires_grad_(False)


def _materialise_buffers(model: torch.nn.Module, device: torch.device) -> None:
    """Computed buffers (RoPE's inverse frequencies) are not in the state dict and were made
    on the meta device: build the module owning them again, on the real device, and take its
    buffers. Every rotary module of the supported architectures is built from the config alone."""
    for name, module in model.named_modules():
        meta = [key for key, buf in module._buffers.items() if buf is not None and buf.is_meta]
        if not meta:
            continue
        config = getattr(module, "config", None)
        if config is None:
            raise ConfigError(f"{name} ({type(module).__name__}): computed buffers {meta} cannot be rebuilt")
        with torch.device(device):
            fresh = type(module)(config)
        for key in meta:
            module._buffers[key] = fresh._buffers[key]
