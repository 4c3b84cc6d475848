"""What every scheduling policy shares: the queues, admission checks, finishing, aborting.

A policy owns its KV manager and decides each step's plan; the engine (engines.core.engine)
runs the plan and tells the policy which sequences finished. The four policies of the ladder
are small subclasses that differ in `schedule` and in when memory is returned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from bisect import insort
from collections import deque

from engines.core.options import ResolvedOptions
from engines.core.plan import StepPlan
from engines.core.sequence import Sequence, Status
from engines.kv.base import KVManager
from engines.request import Request, RequestError


class Policy(ABC):
    name: str

    def __init__(self, options: ResolvedOptions, kv: KVManager):
        self.options = options
        self.kv = kv
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []  # holding KV memory, admission order

    def check_fits(self, request: Request) -> None:
        """Raise RequestError if this engine's KV memory can never hold the request."""
        need = len(request.prompt_ids) + request.max_new_tokens
        if need > self.kv.capacity_tokens:
            raise RequestError(
                f"request {request.id!r} needs {need} KV entries, the whole KV cache holds "
                f"{self.kv.capacity_tokens}"
            )

    def add(self, seq: Sequence) -> None:
        if self.options.queue_order == "lof":
            insort(self.waiting, seq, key=_longest_output_first)
        else:
            self.waiting.append(seq)

    @abstractmethod
    def schedule(self) -> StepPlan:
        """Choose this step's chunks."""

    def finish(self, seq: Sequence) -> None:
        """seq has produced its last token (or was aborted while running)."""
        self._mark_finished(seq)
        self.running.remove(seq)
        self.kv.free(seq)

    @staticmethod
    def _mark_finished(seq: Sequence) -> None:
        seq.status = Status.FINISHED

    def abort(self, seq: Sequence) -> None:
        if seq.status is Status.WAITING:
            self.waiting.remove(seq)
            self.kv.free(seq)  # a prefix-cache hit may hold blocks
            seq.status = Status.FINISHED
        elif seq.status is Status.RUNNING:
            self.finish(seq)

    def after_step(self) -> None:
        """Called once the step's results are applied (batch policies end batches here)."""

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def num_running(self) -> int:
        return len(self.running)

    def _decodes_then_prefills(self) -> list[Sequence]:
        """Running sequences in the order a step serves them: every decode (one token each)
        first, then the prefills still under way, each group in admission order."""
        decodes, prefills = [], []
        for seq in self.running:
            left = len(seq.token_ids) - seq.num_computed
            if left == 1:
                decodes.append(seq)
            elif left > 1:
                prefills.append(seq)
        return decodes + prefills

    def _start(self, seq: Sequence) -> None:
        seq.status = Status.RUNNING
        self.running.append(seq)


def _longest_output_first(seq: Sequence) -> tuple:
    """Queue position under queue_order="lof": sequences sent back by a preemption stay in
    front (they were admitted already), then the largest max_new_tokens, then arrival."""
    return (seq.max_computed == 0, -seq.request.max_new_tokens, seq.order)
