"""One contiguous region per slot, reserved for the longest sequence the engine allows
(continuous batching). Simple and fast, and wasteful: a 20-token request holds
max_model_len entries, which caps how many requests fit at once."""

from __future__ import annotations

from engines.core.sequence import Sequence
from engines.kv.base import KVManager


class SlotKV(KVManager):
    name = "slots"

    def __init__(self, num_blocks: int, block_size: int, max_model_len: int):
        super().__init__(num_blocks, block_size)
        self.blocks_per_slot = -(-max_model_len // block_size)
        self.num_slots = num_blocks // self.blocks_per_slot
        self._free_slots = list(range(self.num_slots - 1, -1, -1))  # pop() gives slot 0 first
        self._holders: dict[int, Sequence] = {}  # slot -> sequence

    @property
    def slot_tokens(self) -> int:
        return self.blocks_per_slot * self.block_size

    def free_slots(self) -> int:
        return len(self._free_slots)

    def assign(self, seq: Sequence) -> bool:
        """Give seq a whole region; False when every slot is taken."""
        if seq.block_table:
            return True
        if not self._free_slots:
            return False
        slot = self._free_slots.pop()
        first = slot * self.blocks_per_slot
        seq.block_table = list(range(first, first + self.blocks_per_slot))
        self._holders[slot] = seq
        return True

    def free(self, seq: Sequence) -> None:
        if not seq.block_table:
            return
        slot = seq.block_table[0] // self.blocks_per_slot
        assert self._holders.pop(slot) is seq, f"slot {slot} not held by {seq.id}"
        self._free_slots.append(slot)
        seq.block_table = []

    def used_tokens(self) -> int:
        return sum(s.num_computed for s in self._holders.values())

    def reserved_tokens(self) -> int:
        return len(self._holders) * self.slot_tokens

    def check_invariants(self) -> None:
        assert len(self._free_slots) + len(self._holders) == self.num_slots
        assert len(set(self._free_slots)) == len(self._free_slots), "a slot is free twice"
        assert not set(self._free_slots) & set(self._holders), "a slot is both free and held"
        for slot, seq in self._holders.items():
            first = slot * self.blocks_per_slot
            assert seq.block_table == list(range(first, first + self.blocks_per_slot))
            assert seq.cache_len <= self.slot_tokens
