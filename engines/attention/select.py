"""Attention backends by name. All take the same packed batch and AttentionMetadata."""

from __future__ import annotations

import torch

from engines.attention.reference import ReferenceAttention
from engines.request import ConfigError

BACKENDS = ("reference",)


def make_attention(name: str, device: torch.device, scale: float):
    if name in ("auto", "reference"):
        return ReferenceAttention(scale)
    raise ConfigError(f"unknown attention backend {name!r}; known: {', '.join(BACKENDS)}")
