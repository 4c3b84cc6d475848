"""The paged KV cache: a pool of fixed-size blocks, a block table per sequence, blocks taken
as tokens arrive and returned when a sequence finishes or is preempted.

Prefix caching (optional): a full block is keyed by a chained hash of its tokens
(blake2b(parent block's hash, its tokens)), so equal keys mean equal whole prefixes. Freed blocks
keep their key and contents until the pool reuses them (least recently freed first), and a new
sequence whose prompt starts with cached blocks shares them instead of recomputing. Every hit
is verified against the stored tokens, so a hash collision costs a miss, never a wrong answer.
"""

from __future__ import annotations

import hashlib
import struct
from collections import OrderedDict

from engines.core.sequence import Sequence
from engines.kv.base import KVManager


class _Block:
    __slots__ = ("id", "ref_count", "key", "hash")

    def __init__(self, block_id: int):
        self.id = block_id
        self.ref_count = 0
        self.key: tuple | None = None  # (parent hash, tokens) of a cached full block
        self.hash: bytes | None = None


def chained_hash(parent: bytes | None, tokens: tuple[int, ...]) -> bytes:
    """A 128-bit hash of a block's tokens and, through its parent's hash, of every token
    before them."""
    h = hashlib.blake2b(parent or b"", digest_size=16)
    h.update(struct.pack(f"<{len(tokens)}q", *tokens))
    return h.digest()


class PagedKV(KVManager):
    name = "paged"

    def __init__(self, num_blocks: int, block_size: int, prefix_caching: bool = False):
        super().__init__(num_blocks, block_size)
        self.prefix_caching = prefix_caching
        self._blocks = [_Block(i) for i in range(num_blocks)]
        # Blocks nobody holds, oldest first: reuse takes from the front. Cached ones stay
        # findable by hash until taken.
        self._free: OrderedDict[int, None] = OrderedDict((i, None) for i in range(num_blocks))
        self._cached: dict[bytes, int] = {}  # block hash -> block id
        self._holders: dict[str, Sequence] = {}
        self._extra_refs = 0  # sum over shared blocks of (ref_count - 1): O(1) accounting

    # -- allocation ---------------------------------------------------------------------

    def num_free_blocks(self) -> int:
        return len(self._free)

    def blocks_needed(self, seq: Sequence, num_entries: int) -> int:
        """Blocks seq must still take for its cache to hold num_entries entries."""
        return max(0, -(-num_entries // self.block_size) - len(seq.block_table))

    def reserve(self, seq: Sequence, num_entries: int) -> bool:
        """Grow seq's block table to hold num_entries cache entries; all or nothing."""
        need = self.blocks_needed(seq, num_entries)
        if need > len(self._free):
            return False
        for _ in range(need):
            block_id, _ = self._free.popitem(last=False)
            block = self._blocks[block_id]
            if block.hash is not None:  # evict: its contents are about to be overwritten
                del self._cached[block.hash]
                block.key = block.hash = None
            block.ref_count = 1
            seq.block_table.append(block_id)
        self._holders[seq.id] = seq
        return True

    def free(self, seq: Sequence) -> None:
        # Tail blocks first into the free queue, so they are reused before the prefix blocks
        # that other requests are more likely to share.
        for block_id in reversed(seq.block_table):
            block = self._blocks[block_id]
            if block.ref_count > 1:
                self._extra_refs -= 1
            block.ref_count -= 1
            if block.ref_count == 0:
                self._free[block_id] = None
        seq.block_table = []
        seq.block_hashes = []
        self._holders.pop(seq.id, None)

    # -- prefix caching -----------------------------------------------------------------

    def _block_key(self, seq: Sequence, index: int) -> tuple:
        parent = seq.block_hashes[index - 1] if index > 0 else None
        start = index * self.block_size
        return (parent, tuple(seq.token_ids[start : start + self.block_size]))

    def match_prefix(self, seq: Sequence) -> int:
        """For a sequence with nothing computed: share the cached blocks its tokens start with,
        and return how many tokens they hold. The last token is always left to compute, since
        its logits give the next token."""
        if not self.prefix_caching or seq.block_table:
            return 0
        hits = 0
        for index in range((seq.num_tokens - 1) // self.block_size):
            key = self._block_key(seq, index)
            h = chained_hash(*key)
            block_id = self._cached.get(h)
            if block_id is None or self._blocks[block_id].key != key:  # miss or collision
                break
            block = self._blocks[block_id]
            if block.ref_count == 0:
                del self._free[block_id]
            else:
                self._extra_refs += 1
            block.ref_count += 1
            seq.block_table.append(block_id)
            seq.block_hashes.append(h)
            hits += 1
        if hits:
            self._holders[seq.id] = seq
        return hits * self.block_size

    def cache_full_blocks(self, seq: Sequence) -> None:
        """After a step: key the blocks seq has just filled, so later requests can share them."""
        if not self.prefix_caching:
            return
        for index in range(len(seq.block_hashes), seq.num_computed // self.block_size):
            key = self._block_key(seq, index)
            h = chained_hash(*key)
            seq.block_hashes.append(h)
            block = self._blocks[seq.block_table[index]]
            if h not in self._cached and block.hash is None:
                block.key, block.hash = key, h
                self._cached[h] = block.id

    # -- accounting -----------------------------------------------------------------------

    def used_tokens(self) -> int:
        """Real context entries, counting a block shared by several sequences once."""
        per_seq = sum(s.num_computed for s in self._holders.values())
        return per_seq - self._extra_refs * self.block_size

    def reserved_tokens(self) -> int:
        return (self.num_blocks - len(self._free)) * self.block_size

    def check_invariants(self) -> None:
        owners = [0] * self.num_blocks
        for seq in self._holders.values():
            assert len(set(seq.block_table)) == len(seq.block_table), f"{seq.id} holds a block twice"
            for block_id in seq.block_table:
                owners[block_id] += 1
        for block in self._blocks:
            assert block.ref_count == owners[block.id], (
                f"block {block.id}: ref_count {block.ref_count} but {owners[block.id]} holders"
            )
            assert (block.ref_count == 0) == (block.id in self._free), f"block {block.id} free-list mismatch"
            if block.hash is not None:
                assert self._cached.get(block.hash) == block.id, f"block {block.id} hash not indexed"
                assert block.hash == chained_hash(*block.key), f"block {block.id} hash rewritten"
                assert len(block.key[1]) == self.block_size, "only full blocks are cached"
        assert len(self._free) + sum(1 for b in self._blocks if b.ref_count > 0) == self.num_blocks
        assert self._extra_refs == sum(b.ref_count - 1 for b in self._blocks if b.ref_count > 1)
        assert all(self._blocks[i].hash == h for h, i in self._cached.items()), "stale hash index"
