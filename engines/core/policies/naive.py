"""Naive padded batching, what `model.generate` does with a left-padded batch.

Up to max_batch waiting requests form a batch; prompts are left-padded to the longest and the
KV cache is a rectangle [B, longest prompt + largest max_new_tokens]. The batch decodes until
its longest request is done: a finished row keeps computing a token per step that is thrown
away, and nothing new joins until the batch ends.

Waste it shows: padded tokens in prefill, wasted decode steps of finished rows, the barrier.
"""

from __future__ import annotations

from engines.core.plan import Chunk, StepPlan
from engines.core.policies.batch_barrier import BatchBarrierPolicy
from engines.core.sequence import Sequence, Status
from engines.kv.padded import PaddedKV
from engines.request import Request, RequestError


def _width(seqs: list[Sequence]) -> int:
    return max(s.num_prompt for s in seqs) + max(s.request.max_new_tokens for s in seqs)


class NaivePolicy(BatchBarrierPolicy):
    name = "naive"
    kv: PaddedKV

    def check_fits(self, request: Request) -> None:
        need = len(request.prompt_ids) + request.max_new_tokens
        if not self.kv.fits(1, need):
            raise RequestError(
                f"request {request.id!r} needs a padded row of {need} KV entries, the whole "
                f"KV cache holds {self.kv.capacity_tokens}"
            )

    def _form_batch(self) -> list[Sequence]:
        batch = [self.waiting.popleft()]
        while self.waiting and len(batch) < self.options.max_batch:
            if not self.kv.fits(len(batch) + 1, _width(batch + [self.waiting[0]])):
                break  # the rectangle would not fit: the rest waits for the next batch
            batch.append(self.waiting.popleft())
        self.kv.allocate(batch, _width(batch))
        longest = max(s.num_prompt for s in batch)
        for seq in batch:
            seq.num_pad = longest - seq.num_prompt
            seq.status = Status.RUNNING
        self.running = list(batch)
        return batch

    def _prefill(self, batch: list[Sequence]) -> StepPlan:
        return StepPlan(chunks=[Chunk(s, s.num_prompt, num_pad=s.num_pad) for s in batch])

    def _decode(self) -> StepPlan:
        return StepPlan(
            chunks=[Chunk(s, 0, wasted=True) if s.is_finished else Chunk(s, 1) for s in self.batch]
        )

    def finish(self, seq: Sequence) -> None:
        # The row stays in the rectangle and keeps computing until the whole batch is done.
        seq.status = Status.FINISHED

    def _release(self, seq: Sequence) -> None:
        self.kv.free(seq)
        if seq in self.running:
            self.running.remove(seq)
