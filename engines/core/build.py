"""Builds an in-repo engine: the ladder's four rungs as (policy, KV layout) pairs.

    naive       NaivePolicy       + PaddedKV   (rectangle per batch, left-padded)
    static      StaticPolicy      + PaddedKV   (rectangle per batch, ragged compute)
    continuous  ContinuousPolicy  + SlotKV
    paged       PagedPolicy       + PagedKV    (blocks on demand, optional prefix cache)
"""

from __future__ import annotations

import gc

import torch

from engines.attention.select import make_attention
from engines.core.cuda_graphs import DecodeGraphs
from engines.core.engine import LLMEngine
from engines.core.mixed_graphs import MixedGraphs
from engines.core.model_runner import ModelRunner
from engines.core.options import EngineOptions, default_max_model_len, resolve
from engines.core.policies.continuous import ContinuousPolicy
from engines.core.policies.naive import NaivePolicy
from engines.core.policies.paged import PagedPolicy
from engines.core.policies.static import StaticPolicy
from engines.kv.base import KVStorage, kv_bytes_per_token
from engines.kv.padded import PaddedKV
from engines.kv.paged import PagedKV
from engines.kv.slots import SlotKV
from engines.model.llama import CausalLM
from engines.model.weights import load_weights
from engines.request import ConfigError

LADDER = {
    "naive": (NaivePolicy, lambda o: PaddedKV(o.num_blocks, o.block_size)),
    "static": (StaticPolicy, lambda o: PaddedKV(o.num_blocks, o.block_size)),
    "continuous": (ContinuousPolicy, lambda o: SlotKV(o.num_blocks, o.block_size, o.max_model_len)),
    "paged": (PagedPolicy, lambda o: PagedKV(o.num_blocks, o.block_size, o.prefix_caching)),
}


def _check_batch_invariant(device: torch.device) -> None:
    """The batch-invariant matrix product is a Triton kernel: it needs Triton, and a CUDA
    device or Triton's CPU interpreter (TRITON_INTERPRET=1, slow: tests only)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        raise ConfigError(
            "batch_invariant=True needs the triton package (its matrix product is a Triton kernel)"
        ) from None
    from engines.model.invariant_matmul import interpreting

    if device.type != "cuda" and not interpreting():
        raise ConfigError(
            f"batch_invariant=True runs Triton kernels, which need a CUDA device; got device {device.type!r} "
            "(on a CPU only Triton's interpreter runs them: set TRITON_INTERPRET=1 before starting, slow)"
        )


def build_engine(
    name: str,
    model: str = "tiny",
    *,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    **options,
) -> LLMEngine:
    if name not in LADDER:
        raise ConfigError(f"{name!r} is not an in-repo engine; in-repo engines: {', '.join(LADDER)}")
    opts = EngineOptions.from_kwargs(name, options)
    if opts.prefix_caching and name != "paged":
        raise ConfigError(f"prefix_caching needs the paged KV cache; engine {name!r} has none")
    if opts.admission != "on-demand" and name != "paged":
        raise ConfigError(
            f"admission={opts.admission!r} is a paged KV cache's choice; engine {name!r} reserves its KV "
            "memory when a request starts already"
        )
    weights = load_weights(model, device=device, dtype=dtype, seed=seed)
    config = weights.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    model_max_len = config.max_position_embeddings
    # The padded rectangle's finished rows run past their own length (up to twice
    # max_model_len): the RoPE table covers that.
    max_positions = 2 * default_max_model_len(opts, model_max_len)
    attention = make_attention(
        opts.attention, weights.device, num_heads=config.num_attention_heads,
        num_kv_heads=config.num_key_value_heads, head_dim=head_dim, batch_invariant=bool(opts.batch_invariant),
    )
    if opts.batch_invariant:
        _check_batch_invariant(weights.device)
        if weights.device.type == "cuda" and attention.name != "triton":
            raise ConfigError(
                f"batch_invariant=True needs attention='triton' on a GPU (got {attention.name!r}): only the "
                "Triton attention and its fused norms compute each token the same way in any batch"
            )
    # the fused Triton elementwise kernels go with the Triton attention (the GPU path)
    net = CausalLM(
        weights, attention, max_positions=max_positions, fused=attention.name == "triton",
        batch_invariant=bool(opts.batch_invariant),
    )
    model_info = weights.describe()
    weights.state_dict.clear()  # the fused copies in `net` are all that is kept
    gc.collect()
    if weights.device.type == "cuda":
        torch.cuda.empty_cache()
    per_token = kv_bytes_per_token(config.num_hidden_layers, config.num_key_value_heads, head_dim, weights.dtype)
    resolved = resolve(opts, model_max_len=model_max_len, kv_bytes_per_token=per_token, device=weights.device)
    resolved.attention = attention.name
    storage = KVStorage(
        config.num_hidden_layers, resolved.num_blocks, resolved.block_size,
        config.num_key_value_heads, head_dim, weights.dtype, weights.device,
    )
    policy_cls, make_kv = LADDER[name]
    policy = policy_cls(resolved, make_kv(resolved))
    graphs = mixed_graphs = None
    if resolved.cuda_graphs and attention.name == "triton":
        # a padded row may be twice max_model_len long (see max_positions above)
        max_blocks = -(-max_positions // resolved.block_size)
        graphs = DecodeGraphs(net, storage, resolved.max_batch, max_blocks, weights.device)
        if resolved.mixed_graph_tokens:
            mixed_graphs = MixedGraphs(
                net, storage, resolved.max_batch, max_blocks, resolved.mixed_graph_tokens, weights.device
            )
    else:
        resolved.cuda_graphs = False
        resolved.mixed_graph_tokens = 0
    info = {"name": name, "kind": "in-repo", "options": resolved.describe(), "model": model_info}
    runner = ModelRunner(net, storage, weights.device, graphs, mixed_graphs, step_timing=resolved.step_timing)
    return LLMEngine(name, policy, runner, config.vocab_size, info)
