"""Static batching: the batch barrier of naive batching without its padding.

Prompts are packed ragged (no pad tokens) and a finished request leaves the computation at
once, but the batch still runs until its longest request is done and new arrivals wait for
it: the slots freed along the way stay empty. KV: one max-length region per slot.

Waste it shows: idle slots behind the barrier.
"""

from __future__ import annotations

from engines.core.plan import Chunk, StepPlan
from engines.core.policies.batch_barrier import BatchBarrierPolicy
from engines.core.sequence import Sequence
from engines.kv.slots import SlotKV


class StaticPolicy(BatchBarrierPolicy):
    name = "static"
    kv: SlotKV

    def _capacity(self) -> int:
        return min(self.options.max_batch, self.kv.num_slots)

    def _form_batch(self) -> list[Sequence]:
        batch = []
        while self.waiting and len(batch) < self._capacity() and self.kv.assign(self.waiting[0]):
            seq = self.waiting.popleft()
            self._start(seq)
            batch.append(seq)
        return batch

    def _prefill(self, batch: list[Sequence]) -> StepPlan:
        return StepPlan(chunks=[Chunk(s, s.num_uncomputed) for s in batch])

    def _decode(self) -> StepPlan:
        return StepPlan(chunks=[Chunk(s, 1) for s in self.batch if not s.is_finished])

    def _occupied(self) -> int:
        return sum(not s.is_finished for s in self.batch)

    def _release(self, seq: Sequence) -> None:
        pass  # finish() already returned the slot; the barrier only keeps it empty
