"""What naive and static batching share: a batch is formed when the last one has ended,
nothing joins it until then (the batch barrier), and its KV cache is one rectangle
[B, longest prompt + largest max_new_tokens] for the whole batch (what `generate` allocates)."""

from __future__ import annotations

from abc import abstractmethod

from engines.core.plan import StepPlan
from engines.core.policies.base import Policy
from engines.core.sequence import Sequence
from engines.kv.padded import PaddedKV
from engines.request import Request, RequestError


def rectangle_width(seqs: list[Sequence]) -> int:
    return max(s.num_prompt for s in seqs) + max(s.request.max_new_tokens for s in seqs)


class BatchBarrierPolicy(Policy):
    kv: PaddedKV

    def __init__(self, options, kv):
        super().__init__(options, kv)
        self.batch: list[Sequence] = []  # the current batch, finished members included

    def check_fits(self, request: Request) -> None:
        need = len(request.prompt_ids) + request.max_new_tokens
        if not self.kv.fits(1, need):
            raise RequestError(
                f"request {request.id!r} needs a batch row of {need} KV entries, the whole "
                f"KV cache holds {self.kv.capacity_tokens}"
            )

    def schedule(self) -> StepPlan:
        if not self.batch and self.waiting:
            self.batch = self._form_batch()
            plan = self._prefill(self.batch)
        else:
            plan = self._decode()
        plan.idle_slots = min(len(self.waiting), self.options.max_batch - self._occupied())
        return plan

    def _form_batch(self) -> list[Sequence]:
        """Waiting requests in order, as many as max_batch and the rectangle allow."""
        batch = [self.waiting.popleft()]
        while self.waiting and len(batch) < self.options.max_batch:
            if not self.kv.fits(len(batch) + 1, rectangle_width(batch + [self.waiting[0]])):
                break  # the rectangle would not fit: the rest waits for the next batch
            batch.append(self.waiting.popleft())
        self.kv.allocate(batch, rectangle_width(batch))
        for seq in batch:
            self._start(seq)
        return batch

    def finish(self, seq: Sequence) -> None:
        # The row keeps its place in the rectangle until the whole batch is done.
        self._mark_finished(seq)

    def after_step(self) -> None:
        if self.batch and all(s.is_finished for s in self.batch):
            for seq in self.batch:
                self.kv.free(seq)
                self.running.remove(seq)
            self.batch = []

    @abstractmethod
    def _prefill(self, batch: list[Sequence]) -> StepPlan:
        """The batch's first step: all its prompts."""

    @abstractmethod
    def _decode(self) -> StepPlan:
        """Every later step."""

    @abstractmethod
    def _occupied(self) -> int:
        """Batch slots in use: one that sits empty while requests wait is an idle slot."""
