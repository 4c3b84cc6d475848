"""Attention metadata for a packed batch: where each sequence's new K/V goes, which cached
K/V it reads.

The batch is T tokens from N sequences laid end to end (no batch dimension). Sequence i owns
tokens query_start[i]:query_start[i+1]; after this step its cache holds seq_lens[i] entries,
the last query_lens[i] of them written now. A token's cache index, not its RoPE position, is
what causality is decided on: a query at cache index c sees keys key_start[i] <= j <= c.
key_start is 0 except in the padded engine, whose left pads occupy the first cache entries.

Every KV layout (padded rectangle, one region per slot, paged pool) is addressed the same
way: physical cache [num_blocks, block_size, kv_heads, head_dim] per layer, and a block table
per sequence mapping cache index j to block block_tables[i, j // block_size].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class AttentionMetadata:
    query_start: torch.Tensor  # [N+1] int32, cumulative query lengths
    seq_lens: torch.Tensor  # [N] int32, cache entries after this step
    key_start: torch.Tensor  # [N] int32, first valid cache index (left pads before it)
    block_tables: torch.Tensor  # [N, max_blocks] int32
    slot_mapping: torch.Tensor  # [T] int64, physical slot (block * block_size + offset) per token
    query_lens: list[int]  # host copies: the reference backend loops on them
    seq_lens_host: list[int]
    key_start_host: list[int]
    block_size: int

    @property
    def num_seqs(self) -> int:
        return len(self.query_lens)

    @property
    def num_tokens(self) -> int:
        return int(self.slot_mapping.shape[0])

    @property
    def max_query_len(self) -> int:
        return max(self.query_lens, default=0)

    @property
    def max_seq_len(self) -> int:
        return max(self.seq_lens_host, default=0)

    @property
    def is_decode_only(self) -> bool:
        return self.max_query_len == 1

    @property
    def has_padding(self) -> bool:
        return any(self.key_start_host)
