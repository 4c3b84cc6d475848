"""Static batching: the batch barrier of naive batching without its padding.

Prompts are packed ragged (no pad tokens) and a finished request leaves the computation at
once, but the batch still runs until its longest request is done and new arrivals wait for
it: the rows freed along the way stay empty. Same rectangle of KV memory as naive batching.

Waste it shows: idle slots behind the barrier.
"""

from __future__ import annotations

from engines.core.plan import Chunk, StepPlan
from engines.core.policies.batch_barrier import BatchBarrierPolicy
from engines.core.sequence import Sequence


class StaticPolicy(BatchBarrierPolicy):
    name = "static"

    def _prefill(self, batch: list[Sequence]) -> StepPlan:
        return StepPlan(chunks=[Chunk(s, s.num_uncomputed) for s in batch])

    def _decode(self) -> StepPlan:
        return StepPlan(chunks=[Chunk(s, 1) for s in self.batch if not s.is_finished])

    def _occupied(self) -> int:
        return sum(not s.is_finished for s in self.batch)
