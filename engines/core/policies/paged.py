"""Continuous batching over a paged KV cache.

The schedule of continuous batching, but memory is taken a block at a time as tokens arrive,
so short requests hold little and many more run at once. When the pool runs dry, the newest
running request is preempted: its blocks are returned and it goes back to the front of the
queue, to be recomputed from its prompt and the tokens it already produced (vLLM's recompute
preemption). With prefix caching, a new request first shares the cached blocks its prompt
starts with.

Admission "reserve" (TGI's router does this) admits a request only while the blocks every
running request could grow to (prompt + max_new_tokens) fit the pool: fewer run at once, but
nothing is ever preempted, and requests still take their blocks only as tokens arrive.

Waste it shows: only the partly filled last block of each request (and recomputation after
preemptions, counted separately).
"""

from __future__ import annotations

from engines.core.plan import Chunk, StepPlan
from engines.core.policies.base import Policy
from engines.core.sequence import Sequence, Status
from engines.kv.paged import PagedKV


class PagedPolicy(Policy):
    name = "paged"
    kv: PagedKV

    def __init__(self, options, kv):
        super().__init__(options, kv)
        self.reserve = options.admission == "reserve"
        self.committed_blocks = 0  # blocks the running requests may grow to (admission "reserve")

    def _blocks_at_most(self, seq: Sequence) -> int:
        return -(-(seq.num_prompt + seq.request.max_new_tokens) // self.kv.block_size)

    def schedule(self) -> StepPlan:
        budget = self.options.token_budget
        block_size = self.kv.block_size
        plan = StepPlan()
        for seq in self._decodes_then_prefills():
            if seq.status is not Status.RUNNING:
                continue  # preempted earlier in this loop
            n = min(len(seq.token_ids) - seq.num_computed, budget)
            if n == 0:
                continue
            need = seq.cache_len + n
            # most steps fit in the blocks a sequence already has: no call into the pool
            while need > len(seq.block_table) * block_size and not self.kv.reserve(seq, need):
                victim = max(self.running, key=lambda s: s.order)
                budget += self._preempt(victim, plan)
                if victim is seq:
                    break
            if seq.status is Status.RUNNING:
                plan.chunks.append(Chunk(seq, n))
                budget -= n
        if not plan.preempted:  # memory is short: let the preempted ones back in first
            self._admit(plan, budget)
        return plan

    def _admit(self, plan: StepPlan, budget: int) -> None:
        while self.waiting and budget > 0 and len(self.running) < self.options.max_batch:
            seq = self.waiting[0]
            if self.reserve and self.committed_blocks + self._blocks_at_most(seq) > self.kv.num_blocks:
                break
            hit = self.kv.match_prefix(seq)
            seq.num_computed = seq.cache_len = hit
            n = min(seq.num_uncomputed, budget)
            if not self.kv.reserve(seq, seq.cache_len + n):
                self.kv.free(seq)  # give back the shared prefix blocks too
                seq.num_computed = seq.cache_len = 0
                break
            self.waiting.popleft()
            self._start(seq)
            plan.prefix_hit_tokens += hit
            plan.chunks.append(Chunk(seq, n))
            budget -= n

    def _start(self, seq: Sequence) -> None:
        super()._start(seq)
        self.committed_blocks += self._blocks_at_most(seq)

    def finish(self, seq: Sequence) -> None:
        super().finish(seq)
        self.committed_blocks -= self._blocks_at_most(seq)

    def _preempt(self, seq: Sequence, plan: StepPlan) -> int:
        """Return seq's memory and queue it for recompute; give back its budget if it had
        already been given a chunk this step."""
        refund = 0
        for chunk in [c for c in plan.chunks if c.seq is seq]:
            plan.chunks.remove(chunk)
            refund += chunk.num_tokens
        self.running.remove(seq)
        self.committed_blocks -= self._blocks_at_most(seq)
        self.kv.free(seq)
        seq.num_computed = seq.cache_len = 0
        seq.status = Status.WAITING
        self.waiting.appendleft(seq)
        plan.preempted.append(seq)
        return refund
