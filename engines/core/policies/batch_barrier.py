"""What naive and static batching share: a batch is formed when the last one has ended, and
nothing joins it until then (the batch barrier)."""

from __future__ import annotations

from abc import abstractmethod

from engines.core.plan import StepPlan
from engines.core.policies.base import Policy
from engines.core.sequence import Sequence


class BatchBarrierPolicy(Policy):
    def __init__(self, options, kv):
        super().__init__(options, kv)
        self.batch: list[Sequence] = []  # the current batch, finished members included

    def schedule(self) -> StepPlan:
        if not self.batch and self.waiting:
            self.batch = self._form_batch()
            plan = self._prefill(self.batch)
        else:
            plan = self._decode()
        plan.idle_slots = min(len(self.waiting), self._capacity() - self._occupied())
        return plan

    def after_step(self) -> None:
        if self.batch and all(s.is_finished for s in self.batch):
            for seq in self.batch:
                self._release(seq)
            self.batch = []

    def _capacity(self) -> int:
        return self.options.max_batch

    @abstractmethod
    def _form_batch(self) -> list[Sequence]:
        """Take waiting requests into a new batch and give them KV memory."""

    @abstractmethod
    def _prefill(self, batch: list[Sequence]) -> StepPlan:
        """The batch's first step: all its prompts."""

    @abstractmethod
    def _decode(self) -> StepPlan:
        """Every later step: one token per member still computing."""

    def _occupied(self) -> int:
        """Batch slots in use: a slot that sits empty while requests wait is an idle slot."""
        return len(self.batch)

    def _release(self, seq: Sequence) -> None:
        self.kv.free(seq)
