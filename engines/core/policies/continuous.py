"""Continuous batching: scheduling per step (iteration-level) over ragged batches.

Every step packs one decode token for each running request, then prefill chunks under the
token budget (chunked prefill: a long prompt is split over steps), then admits new requests
while a KV slot is free. A request leaves the moment it finishes and its slot is refilled at
the next step. KV: one max-length region per slot.

Waste it shows: KV reserved but unused (a short request holds a max-length region), which
caps how many requests run at once.
"""

from __future__ import annotations

from engines.core.plan import Chunk, StepPlan
from engines.core.policies.base import Policy
from engines.kv.slots import SlotKV


class ContinuousPolicy(Policy):
    name = "continuous"
    kv: SlotKV

    def schedule(self) -> StepPlan:
        budget = self.options.token_budget
        plan = StepPlan()
        for seq in self._decodes_then_prefills():
            n = min(seq.num_uncomputed, budget)
            if n:
                plan.chunks.append(Chunk(seq, n))
                budget -= n
        while (
            self.waiting
            and budget > 0
            and len(self.running) < self.options.max_batch
            and self.kv.assign(self.waiting[0])
        ):
            seq = self.waiting.popleft()
            self._start(seq)
            n = min(seq.num_uncomputed, budget)
            plan.chunks.append(Chunk(seq, n))
            budget -= n
        return plan
