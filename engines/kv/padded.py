"""The rectangle of batch-barrier engines: B rows x W columns for the whole batch, with
W = longest prompt + largest max_new_tokens in the batch (what `generate` allocates for a
left-padded batch). Rows are contiguous runs of blocks; the rectangle lives until the batch's
last request finishes."""

from __future__ import annotations

from engines.core.sequence import Sequence
from engines.kv.base import KVManager


class PaddedKV(KVManager):
    name = "padded"

    def __init__(self, num_blocks: int, block_size: int):
        super().__init__(num_blocks, block_size)
        self._rows: list[Sequence] = []
        self._blocks_per_row = 0

    def fits(self, rows: int, width: int) -> bool:
        return rows * -(-width // self.block_size) <= self.num_blocks

    def allocate(self, seqs: list[Sequence], width: int) -> None:
        assert not self._rows, "one rectangle at a time"
        assert self.fits(len(seqs), width), "rectangle larger than the cache"
        self._blocks_per_row = -(-width // self.block_size)
        for row, seq in enumerate(seqs):
            first = row * self._blocks_per_row
            seq.block_table = list(range(first, first + self._blocks_per_row))
        self._rows = list(seqs)

    def free(self, seq: Sequence) -> None:
        """Rows are freed together: only when the last one goes is the rectangle released."""
        seq.block_table = []
        if all(not s.block_table for s in self._rows):
            self._rows = []
            self._blocks_per_row = 0

    def used_tokens(self) -> int:
        return sum(s.num_computed for s in self._rows if s.block_table)

    def reserved_tokens(self) -> int:
        return len(self._rows) * self._blocks_per_row * self.block_size

    def check_invariants(self) -> None:
        assert len(self._rows) * self._blocks_per_row <= self.num_blocks
        for seq in self._rows:
            assert seq.cache_len <= self._blocks_per_row * self.block_size
