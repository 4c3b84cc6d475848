"""Naive padded batching, what `model.generate` does with a left-padded batch.

Up to max_batch waiting requests form a batch; prompts are left-padded to the longest. The
batch decodes until its longest request is done: a finished row keeps computing a token per
step that is thrown away, and nothing new joins until the batch ends.

Waste it shows: padded tokens in prefill, wasted decode steps of finished rows, the barrier.
"""

from __future__ import annotations

from engines.core.plan import Chunk, StepPlan
from engines.core.policies.batch_barrier import BatchBarrierPolicy
from engines.core.sequence import Sequence


class NaivePolicy(BatchBarrierPolicy):
    name = "naive"

    def _prefill(self, batch: list[Sequence]) -> StepPlan:
        longest = max(s.num_prompt for s in batch)
        for seq in batch:
            seq.num_pad = longest - seq.num_prompt
        return StepPlan(chunks=[Chunk(s, s.num_prompt, num_pad=s.num_pad) for s in batch])

    def _decode(self) -> StepPlan:
        return StepPlan(
            chunks=[Chunk(s, 0, wasted=True) if s.is_finished else Chunk(s, 1) for s in self.batch]
        )

    def _occupied(self) -> int:
        return len(self.batch)  # finished rows still compute: they are wasted, not idle
