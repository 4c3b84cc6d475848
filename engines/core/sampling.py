"""Choosing the next token: greedy, or temperature / top-k / top-p with a per-request seed.

Random sampling uses the Gumbel-max trick with counter-based noise: the noise for vocabulary
entry v of request r's i-th output token is a hash of (seed_r, i, v). A request therefore gets
the same tokens whatever it is batched with, and again after a preemption recomputes it; and
the whole batch samples in a few tensor ops, with no per-request generator and no host sync.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engines.request import SamplingParams
from engines.transfer import pack_to_device

_MASK32 = 0xFFFFFFFF


def _mul32(x: torch.Tensor, c: int) -> torch.Tensor:
    """(x * c) mod 2**32 for 32-bit x and c, in int64 without overflow: 16 bits at a time."""
    return ((x & 0xFFFF) * c + ((((x >> 16) * c) & 0xFFFF) << 16)) & _MASK32


def _mix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer hash (lowbias32 by C. Wellons) on int64 tensors holding 32-bit values."""
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


def uniform_noise(seeds: torch.Tensor, steps: torch.Tensor, vocab: int) -> torch.Tensor:
    """[S] seeds, [S] output indices -> [S, vocab] uniforms in (0, 1), a pure function of
    (seed, index, vocab id)."""
    v = torch.arange(vocab, device=seeds.device, dtype=torch.int64)
    x = _mix32(_mix32(seeds & _MASK32)[:, None] ^ (steps[:, None] & _MASK32))
    x = _mix32(x ^ _mul32(v[None, :], 0x85EBCA77))
    return ((x >> 8).float() + 0.5) / float(1 << 24)


@dataclass
class SamplingBatch:
    """Per-row sampling parameters as tensors, built once per step on the host."""

    all_greedy: bool
    greedy: torch.Tensor  # [S] bool
    temperature: torch.Tensor  # [S] float32
    top_k: torch.Tensor  # [S] int64, 0 = off
    top_p: torch.Tensor  # [S] float32
    seeds: torch.Tensor  # [S] int64
    steps: torch.Tensor  # [S] int64, index of the output token being sampled

    @classmethod
    def build(cls, params: list[SamplingParams], steps: list[int], device) -> "SamplingBatch":
        all_greedy = all(p.greedy for p in params)
        if all_greedy:
            empty = torch.empty(0, device=device)
            return cls(True, empty, empty, empty, empty, empty, empty)
        # two copies to the device (floats, integers), neither waiting for it
        temperature, top_p = pack_to_device(
            [np.array([p.temperature or 1.0 for p in params]), np.array([p.top_p for p in params])], np.float32, device
        )
        greedy, top_k, seeds, step = pack_to_device(
            [np.array([p.greedy for p in params]), np.array([p.top_k for p in params]),
             np.array([p.seed for p in params]), np.asarray(steps)],
            np.int64, device,
        )
        return cls(False, greedy.bool(), temperature, top_k, top_p, seeds, step)


def sample(logits: torch.Tensor, batch: SamplingBatch) -> torch.Tensor:
    """logits [S, V] in the model dtype -> token ids [S] (int64, still on the device)."""
    greedy = logits.argmax(dim=-1)  # widening to float32 is exact: the same argmax, ties included
    if batch.all_greedy:
        return greedy
    scaled = logits.float() / batch.temperature[:, None]
    vocab = scaled.shape[-1]
    # top-k: keep logits >= the k-th largest (k = 0 keeps all)
    k = torch.where(batch.top_k > 0, batch.top_k.clamp(max=vocab), torch.full_like(batch.top_k, vocab))
    sorted_logits, _ = scaled.sort(dim=-1, descending=True)
    kth = sorted_logits.gather(1, (k - 1)[:, None])
    scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    # top-p: keep the smallest set of most likely tokens whose probability reaches p
    sorted_logits = sorted_logits.masked_fill(sorted_logits < kth, float("-inf"))
    probs = sorted_logits.softmax(dim=-1)
    before = probs.cumsum(dim=-1) - probs  # mass strictly above each sorted entry
    keep_sorted = before < batch.top_p[:, None]
    last_kept = keep_sorted.sum(dim=-1, keepdim=True).clamp(min=1) - 1
    threshold = sorted_logits.gather(1, last_kept)
    scaled = scaled.masked_fill(scaled < threshold, float("-inf"))
    gumbel = -torch.log(-torch.log(uniform_noise(batch.seeds, batch.steps, vocab)))
    sampled = (scaled + gumbel).argmax(dim=-1)
    return torch.where(batch.greedy, greedy, sampled)
