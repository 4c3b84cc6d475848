"""The paged block pool under random operation sequences (hypothesis state machine): the
invariants (free + used = total, reference counts match holders, no block held twice by one
sequence, cached keys consistent) hold after every operation, and prefix hits return exactly
the blocks that hold the same tokens."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engines.core.sequence import Sequence
from engines.kv.paged import PagedKV
from engines.request import Request

BLOCK = 4
PREFIXES = [tuple(range(10, 30)), tuple(range(50, 70))]  # two families of shared prompts


class BlockPoolMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.kv = PagedKV(num_blocks=12, block_size=BLOCK, prefix_caching=True)
        self.live: list[Sequence] = []
        self.n = 0
        # tokens each block held when its sequence computed it: a prefix hit must return
        # blocks whose recorded tokens equal the new sequence's tokens
        self.contents: dict[int, tuple] = {}

    @rule(family=st.integers(0, 1), cut=st.integers(1, 20), tail=st.lists(st.integers(3, 9), max_size=9))
    def new_sequence(self, family, cut, tail):
        tokens = PREFIXES[family][:cut] + tuple(tail)
        seq = Sequence(Request(f"s{self.n}", tokens, 4), self.n)
        self.n += 1
        hit = self.kv.match_prefix(seq)
        assert hit % BLOCK == 0 and hit <= len(tokens) - 1
        for i, block_id in enumerate(seq.block_table):
            assert self.contents[block_id] == tokens[i * BLOCK : (i + 1) * BLOCK], "wrong block shared"
        seq.num_computed = seq.cache_len = hit
        self.live.append(seq)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def compute(self, data):
        seq = data.draw(st.sampled_from(self.live))
        n = data.draw(st.integers(1, 6))
        target = min(seq.num_tokens, seq.num_computed + n)
        if self.kv.reserve(seq, target):
            seq.num_computed = seq.cache_len = target
            for i in range(target // BLOCK):
                self.contents.setdefault(seq.block_table[i], None)
                self.contents[seq.block_table[i]] = tuple(seq.token_ids[i * BLOCK : (i + 1) * BLOCK])
            self.kv.cache_full_blocks(seq)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def finish(self, data):
        seq = data.draw(st.sampled_from(self.live))
        self.kv.free(seq)
        self.live.remove(seq)
        assert not seq.block_table

    @invariant()
    def pool_is_consistent(self):
        self.kv.check_invariants()
        held = {b for s in self.live for b in s.block_table}
        assert self.kv.num_free_blocks() == self.kv.num_blocks - len(held)
        assert 0 <= self.kv.used_tokens() <= self.kv.reserved_tokens() <= self.kv.capacity_tokens

    def teardown(self):
        for seq in self.live:
            self.kv.free(seq)
        assert self.kv.is_idle() and self.kv.num_free_blocks() == self.kv.num_blocks


BlockPoolMachine.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
TestBlockPool = BlockPoolMachine.TestCase
