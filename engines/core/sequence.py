"""A request's state inside an in-repo engine.

vLLM's vocabulary: a sequence has token_ids (prompt, then outputs as they are sampled) and
num_computed_tokens catching up with them. There is no separate prefill or decode phase:
a step gives a sequence some tokens to compute, and when it has computed all its tokens the
step samples the next one.
"""

from __future__ import annotations

import enum

from engines.request import Request


def pending_token(row: int) -> int:
    """What token_ids holds for a token sampled by the step in flight but not yet on the host
    (async scheduling): -1 - its row in that step's sampled tokens, which stay on the device
    and are substituted there when the next step feeds it."""
    return -1 - row


class Status(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


class Sequence:
    __slots__ = (
        "request", "token_ids", "num_prompt", "num_computed", "cache_len", "num_pad",
        "status", "order", "block_table", "block_hashes", "max_computed", "finish_status",
        "error", "finished_event_sent",
    )

    def __init__(self, request: Request, order: int):
        self.request = request
        self.token_ids: list[int] = list(request.prompt_ids)
        self.num_prompt = len(request.prompt_ids)
        self.num_computed = 0  # tokens whose K/V are in the cache
        self.cache_len = 0  # cache entries written: num_computed, plus pads / wasted rows (naive)
        self.num_pad = 0  # left pads before the prompt in a padded rectangle row
        self.status = Status.WAITING
        self.order = order  # admission order: the newest running sequence is preempted first
        self.block_table: list[int] = []
        self.block_hashes: list[int] = []  # prefix-cache hashes of this sequence's full blocks
        self.max_computed = 0  # high-water mark of num_computed: what a preemption throws away
        self.finish_status: str | None = None
        self.error: str | None = None
        self.finished_event_sent = False

    @property
    def id(self) -> str:
        return self.request.id

    @property
    def num_tokens(self) -> int:
        return len(self.token_ids)

    @property
    def num_output(self) -> int:
        return len(self.token_ids) - self.num_prompt

    @property
    def num_uncomputed(self) -> int:
        return len(self.token_ids) - self.num_computed

    @property
    def is_finished(self) -> bool:
        return self.status is Status.FINISHED

    def __repr__(self) -> str:
        return (
            f"Sequence({self.id!r}, {self.status.value}, tokens={self.num_tokens}, "
            f"computed={self.num_computed}, blocks={len(self.block_table)})"
        )
