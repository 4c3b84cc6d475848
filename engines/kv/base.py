"""What every KV layout shares: the physical cache and the accounting the steps report.

All three layouts use the same physical format, per layer [num_blocks, block_size, kv_heads,
head_dim], addressed through a block table per sequence. They differ in when and how much
they reserve: a rectangle per batch (padded), one max-length region per slot (slots), or
blocks on demand (paged). That difference is the whole point of the ladder's last two rungs.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

from engines.core.sequence import Sequence


def kv_bytes_per_token(num_layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype) -> int:
    """K and V, every layer, one token."""
    return 2 * num_layers * kv_heads * head_dim * torch.empty((), dtype=dtype).element_size()


class KVStorage:
    """The physical cache: one (K, V) pair of [num_blocks + 1, block_size, kv_heads,
    head_dim] tensors per layer. The extra last block is scratch that no manager hands out:
    padding rows of a CUDA-graph batch write there and read from there."""

    def __init__(self, num_layers, num_blocks, block_size, kv_heads, head_dim, dtype, device):
        shape = (num_blocks + 1, block_size, kv_heads, head_dim)
        self.layers = [
            (torch.zeros(shape, dtype=dtype, device=device), torch.zeros(shape, dtype=dtype, device=device))
            for _ in range(num_layers)
        ]
        self.num_blocks = num_blocks
        self.block_size = block_size
        self.scratch_block = num_blocks


class KVManager(ABC):
    """Decides which blocks a sequence's cache entries live in."""

    name: str

    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks = num_blocks
        self.block_size = block_size

    @property
    def capacity_tokens(self) -> int:
        return self.num_blocks * self.block_size

    @abstractmethod
    def free(self, seq: Sequence) -> None:
        """Return everything seq holds; seq.block_table becomes empty."""

    @abstractmethod
    def used_tokens(self) -> int:
        """Cache entries holding real context (not pads, not reserved-but-empty)."""

    @abstractmethod
    def reserved_tokens(self) -> int:
        """Cache entries set aside for running sequences, used or not."""

    @abstractmethod
    def check_invariants(self) -> None:
        """Raise AssertionError if the bookkeeping is inconsistent."""

    def is_idle(self) -> bool:
        """True when nothing is held (after a run, all memory must be free)."""
        return self.reserved_tokens() == 0
