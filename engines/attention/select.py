"""Attention backends by name. All take the same packed batch and AttentionMetadata.

    reference  plain torch (gather + SDPA with explicit masks): any device, the yardstick
    triton     paged flash attention in Triton, reading K/V straight from the cache pages
    auto       triton on a CUDA device when Triton is importable, else reference
"""

from __future__ import annotations

import torch

from engines.attention.reference import ReferenceAttention
from engines.request import ConfigError

BACKENDS = ("auto", "reference", "triton")


def _triton_available() -> bool:
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def make_attention(
    name: str, device: torch.device, *, num_heads: int, num_kv_heads: int, head_dim: int, batch_invariant: bool = False
):
    scale = head_dim**-0.5
    if name == "auto":
        power_of_two = head_dim & (head_dim - 1) == 0
        name = "triton" if device.type == "cuda" and _triton_available() and power_of_two else "reference"
    if name == "reference":
        return ReferenceAttention(scale)
    if name == "triton":
        if not _triton_available():
            raise ConfigError("attention='triton' needs the triton package")
        from engines.attention.triton_paged import TritonPagedAttention

        return TritonPagedAttention(scale, num_heads, num_kv_heads, head_dim, batch_invariant)
    raise ConfigError(f"unknown attention backend {name!r}; known: {', '.join(BACKENDS)}")
