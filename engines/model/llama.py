"""The Llama-family forward over a packed batch (Llama 2/3, Mistral, Qwen2/2.5, Qwen3).

One forward serves every in-repo engine: input_ids [T] and positions [T] of all scheduled
tokens laid end to end, and AttentionMetadata saying where each sequence's K/V is written
and read. The math follows transformers' modeling files step by step (same op order, same
float32 upcasts), so that in float32 the tokens equal `generate`'s.

q/k/v and gate/up projections are fused into one matrix each (as serving engines do): one
matmul instead of three or two, fewer kernel launches per layer.

Every matrix product goes through one `linear` function, chosen once per model: F.linear
(cuBLAS, whose kernel choice depends on the batch size), or, with batch_invariant=True,
engines.model.invariant_matmul.linear, whose result for a token does not depend on the
batch it is computed in.
"""

from __future__ import annotations

import importlib

import torch
import torch.nn.functional as F
from torch import nn

from engines.attention.metadata import AttentionMetadata
from engines.model.weights import ModelWeights


class TorchOps:
    """The layer's elementwise steps in plain torch, in transformers' op order."""

    rotary_store = None  # no fused rotary + cache write: rotary, then the attention writes

    @staticmethod
    def add_rms_norm(x, weight, eps, residual=None):
        """RMSNorm of (residual + x) -> (normed, residual + x)."""
        if residual is not None:
            x = residual + x
        dtype = x.dtype
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + eps)
        return weight * h.to(dtype), x

    @staticmethod
    def rotary(x, positions, cos, sin):
        """x [T, heads, D] rotated at each token's position."""
        cos = cos[positions][:, None, :]
        sin = sin[positions][:, None, :]
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    @staticmethod
    def silu_mul(gate_up):
        gate, up = gate_up.chunk(2, dim=-1)
        return F.silu(gate) * up


class FusedOps:
    """The same steps as single Triton kernels (engines.model.fused), for the GPU."""

    def __init__(self):
        from engines.model import fused

        self.add_rms_norm = fused.add_rms_norm
        self.rotary_store = fused.rotary_store_  # rotary and the cache write in one kernel
        self.silu_mul = fused.silu_mul


class RMSNorm(nn.Module):
    def __init__(self, weight: torch.Tensor, eps: float):
        super().__init__()
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.eps = eps

    def forward(self, x: torch.Tensor, ops=TorchOps, residual=None):
        return ops.add_rms_norm(x, self.weight, self.eps, residual)


def _hf_inv_freq(config) -> tuple[torch.Tensor, float]:
    """RoPE inverse frequencies exactly as transformers computes them for this config (all
    rope types: default, llama3, linear, yarn, ...), by asking the model's own rotary class."""
    module = importlib.import_module(f"transformers.models.{config.model_type}.modeling_{config.model_type}")
    cls = next(getattr(module, n) for n in dir(module) if n.endswith("RotaryEmbedding"))
    rotary = cls(config=config, device="cpu") if "device" in cls.__init__.__code__.co_varnames else cls(config=config)
    return rotary.inv_freq.float(), float(getattr(rotary, "attention_scaling", 1.0))


class Rotary(nn.Module):
    """cos/sin tables [max_positions, D] (the half-dim frequencies twice, as transformers)."""

    def __init__(self, config, max_positions: int, dtype, device):
        super().__init__()
        inv_freq, scaling = _hf_inv_freq(config)
        pos = torch.arange(max_positions, dtype=torch.float32)
        freqs = pos[:, None] * inv_freq[None, :]
        emb = torch.cat((freqs, freqs), dim=-1)
        self.register_buffer("cos", (emb.cos() * scaling).to(dtype=dtype, device=device), persistent=False)
        self.register_buffer("sin", (emb.sin() * scaling).to(dtype=dtype, device=device), persistent=False)


class DecoderLayer(nn.Module):
    def __init__(self, w: dict, prefix: str, config, window: int | None):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.num_kv_heads = config.num_key_value_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.num_heads
        self.window = window
        eps = config.rms_norm_eps
        a, m = prefix + "self_attn.", prefix + "mlp."
        self.input_layernorm = RMSNorm(w[prefix + "input_layernorm.weight"], eps)
        self.post_attention_layernorm = RMSNorm(w[prefix + "post_attention_layernorm.weight"], eps)
        self.qkv_weight = nn.Parameter(
            torch.cat([w[a + "q_proj.weight"], w[a + "k_proj.weight"], w[a + "v_proj.weight"]]),
            requires_grad=False,
        )
        has_bias = a + "q_proj.bias" in w
        self.qkv_bias = (
            nn.Parameter(torch.cat([w[a + "q_proj.bias"], w[a + "k_proj.bias"], w[a + "v_proj.bias"]]), requires_grad=False)
            if has_bias
            else None
        )
        self.o_weight = nn.Parameter(w[a + "o_proj.weight"], requires_grad=False)
        self.o_bias = nn.Parameter(w[a + "o_proj.bias"], requires_grad=False) if a + "o_proj.bias" in w else None
        self.q_norm = RMSNorm(w[a + "q_norm.weight"], eps) if a + "q_norm.weight" in w else None
        self.k_norm = RMSNorm(w[a + "k_norm.weight"], eps) if a + "k_norm.weight" in w else None
        self.gate_up_weight = nn.Parameter(
            torch.cat([w[m + "gate_proj.weight"], w[m + "up_proj.weight"]]), requires_grad=False
        )
        self.down_weight = nn.Parameter(w[m + "down_proj.weight"], requires_grad=False)
        self.q_size = self.num_heads * self.head_dim
        self.kv_size = self.num_kv_heads * self.head_dim

    def forward(self, x, residual, rotary, positions, kv_cache, meta, attention, plan, ops, linear):
        """x [T, hidden] is the last sublayer's output, not yet added to `residual` (None
        for the first layer): each add is fused into the norm that follows it."""
        h, residual = self.input_layernorm(x, ops, residual)
        qkv = linear(h, self.qkv_weight, self.qkv_bias)
        q, k, v = qkv.split([self.q_size, self.kv_size, self.kv_size], dim=-1)
        q = q.view(-1, self.num_heads, self.head_dim)  # [T, H, D]
        k = k.view(-1, self.num_kv_heads, self.head_dim)  # [T, Hkv, D]
        v = v.view(-1, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q = self.q_norm(q.reshape(-1, self.head_dim), ops)[0].view(-1, self.num_heads, self.head_dim)
            k = self.k_norm(k.reshape(-1, self.head_dim), ops)[0].view(-1, self.num_kv_heads, self.head_dim)
        if ops.rotary_store is not None:
            # one kernel rotates q and k and writes k and v to their cache slots
            ops.rotary_store(q, k, v, positions, rotary.cos, rotary.sin, kv_cache[0], kv_cache[1], meta.slot_mapping)
            o = attention(q, k, v, kv_cache[0], kv_cache[1], meta, plan, self.window, kv_written=True)
        else:
            q = ops.rotary(q, positions, rotary.cos, rotary.sin)
            k = ops.rotary(k, positions, rotary.cos, rotary.sin)
            o = attention(q, k, v, kv_cache[0], kv_cache[1], meta, plan, self.window)
        h = linear(o.reshape(-1, self.q_size), self.o_weight, self.o_bias)
        h, residual = self.post_attention_layernorm(h, ops, residual)
        return linear(ops.silu_mul(linear(h, self.gate_up_weight)), self.down_weight), residual


def _layer_windows(config) -> list[int | None]:
    """Sliding window per layer, following transformers' layer_types when present."""
    window = getattr(config, "sliding_window", None)
    n = config.num_hidden_layers
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None:
        return [window if t == "sliding_attention" else None for t in layer_types]
    if config.model_type in ("qwen2", "qwen3") and not getattr(config, "use_sliding_window", False):
        return [None] * n
    return [window] * n


def _linear_function(batch_invariant: bool):
    if not batch_invariant:
        return F.linear
    from engines.model import invariant_matmul  # imports triton: only when asked for

    return invariant_matmul.linear


class CausalLM(nn.Module):
    def __init__(
        self, weights: ModelWeights, attention, max_positions: int, fused: bool = False, batch_invariant: bool = False
    ):
        super().__init__()
        c, w = weights.config, weights.state_dict
        self.config = c
        self.attention = attention
        if fused and not getattr(attention, "accepts_written_kv", False):
            raise ValueError(f"the fused ops write K/V to the cache themselves; attention {attention.name!r} cannot take that")
        self.ops = FusedOps() if fused else TorchOps
        self.linear = _linear_function(batch_invariant)
        self.embed = nn.Parameter(w["model.embed_tokens.weight"], requires_grad=False)
        self.lm_head = self.embed if "lm_head.weight" not in w else nn.Parameter(w["lm_head.weight"], requires_grad=False)
        self.norm = RMSNorm(w["model.norm.weight"], c.rms_norm_eps)
        windows = _layer_windows(c)
        self.layers = nn.ModuleList(
            DecoderLayer(w, f"model.layers.{i}.", c, windows[i]) for i in range(c.num_hidden_layers)
        )
        self.rotary = Rotary(c, max_positions, weights.dtype, weights.device)
        first = self.layers[0]
        self.num_kv_heads, self.head_dim = first.num_kv_heads, first.head_dim

    @torch.inference_mode()
    def forward(
        self,
        input_ids: torch.Tensor,  # [T]
        positions: torch.Tensor,  # [T]
        kv_caches: list[tuple[torch.Tensor, torch.Tensor]],
        meta: AttentionMetadata,
        plan=None,
    ) -> torch.Tensor:
        """plan: the attention backend's per-step plan, when made in advance (CUDA graphs)."""
        if plan is None:
            plan = self.attention.prepare(meta)
        x, residual = F.embedding(input_ids, self.embed), None
        for layer, kv in zip(self.layers, kv_caches):
            x, residual = layer(
                x, residual, self.rotary, positions, kv, meta, self.attention, plan, self.ops, self.linear
            )
        return self.norm(x, self.ops, residual)[0]  # [T, hidden]

    @torch.inference_mode()
    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """[S, hidden] -> [S, vocab] in the model dtype, as transformers computes them.
        Sampling widens them to float32 only where it needs to (greedy does not: the
        conversion is exact, so the argmax is the same, and a float32 copy of a step's logits
        is the largest tensor a decode step writes)."""
        return self.linear(hidden, self.lm_head)
