"""The one step loop of the four in-repo engines.

    plan = policy.schedule()      which sequences compute how many tokens (the policy)
    tokens = runner.execute(plan) one packed forward and sampling (shared)
    apply(plan, tokens)           advance sequences, emit tokens, free what finished

The engines differ only in the policy and the KV manager it owns (engines.core.build).
"""

from __future__ import annotations

import itertools
import time

from engines.api import StepOutput, StepStats
from engines.core.model_runner import ModelRunner
from engines.core.plan import Chunk, StepPlan
from engines.core.policies.base import Policy
from engines.core.sequence import Sequence, Status
from engines.kv.paged import PagedKV
from engines.request import Request, RequestError, TokenEvent


class LLMEngine:
    def __init__(self, name: str, policy: Policy, runner: ModelRunner, vocab_size: int, info: dict):
        self.name = name
        self.policy = policy
        self.kv = policy.kv
        self.runner = runner
        self.vocab_size = vocab_size
        self.max_model_len = policy.options.max_model_len
        self._info = info
        self._seqs: dict[str, Sequence] = {}
        self._order = itertools.count()
        self._cancelled: list[str] = []

    # -- the Engine interface -------------------------------------------------------------

    def add_request(self, request: Request) -> None:
        request.validate(self.vocab_size, self.max_model_len)
        if request.id in self._seqs:
            raise RequestError(f"request id {request.id!r} is already in the engine")
        self.policy.check_fits(request)
        seq = Sequence(request, next(self._order))
        self._seqs[request.id] = seq
        self.policy.add(seq)

    def step(self) -> StepOutput:
        start = time.perf_counter_ns()
        events = [TokenEvent(rid, finished=True, status="cancelled") for rid in self._cancelled]
        self._cancelled.clear()
        plan = self.policy.schedule()
        counts = _count(plan)
        if not plan.is_empty:
            sampled, tokens = self.runner.run(plan)
            events += self._apply(plan, sampled, tokens)
        self.policy.after_step()
        stats = StepStats(
            start_ns=start,
            end_ns=time.perf_counter_ns(),
            num_seqs=len(plan.chunks),
            kv_tokens_used=self.kv.used_tokens(),
            kv_tokens_reserved=self.kv.reserved_tokens(),
            kv_tokens_capacity=self.kv.capacity_tokens,
            queue_len=len(self.policy.waiting),
            running=self.policy.num_running(),
            idle_slots=plan.idle_slots,
            preemptions=len(plan.preempted),
            prefix_cache_hit_tokens=plan.prefix_hit_tokens,
            **counts,
        )
        return StepOutput(events, stats)

    def has_unfinished(self) -> bool:
        return bool(self._seqs) or bool(self._cancelled)

    def abort(self, request_id: str) -> None:
        seq = self._seqs.pop(request_id, None)
        if seq is None:
            return
        if not seq.is_finished:
            self.policy.abort(seq)
        self._cancelled.append(request_id)

    def describe(self) -> dict:
        return self._info

    def close(self) -> None:
        self._seqs.clear()
        self.runner = None  # drop the model and the KV cache

    # -- internals ------------------------------------------------------------------------

    def _apply(self, plan: StepPlan, sampled: list[Chunk], tokens: list[int]) -> list[TokenEvent]:
        for chunk in plan.chunks:
            seq = chunk.seq
            seq.cache_len += chunk.num_entries
            if not chunk.wasted:
                seq.num_computed += chunk.num_tokens
                seq.max_computed = max(seq.max_computed, seq.num_computed)
                if isinstance(self.kv, PagedKV):  # before finishing: freed blocks stay cached
                    self.kv.cache_full_blocks(seq)
        events = []
        for chunk, token in zip(sampled, tokens):
            seq = chunk.seq
            if chunk.wasted or seq.is_finished:
                continue  # a padded batch's finished row: its token is thrown away
            seq.token_ids.append(token)
            done = seq.reached_stop()
            events.append(TokenEvent(seq.id, [token], finished=done))
            if done:
                self.policy.finish(seq)
                del self._seqs[seq.id]
        return events


def _count(plan: StepPlan) -> dict:
    """Token counters of a plan, read before it is applied."""
    c = dict(prefill_tokens=0, decode_tokens=0, padded_tokens=0, wasted_decode_tokens=0, recomputed_tokens=0, sampled_tokens=0)
    for chunk in plan.chunks:
        seq = chunk.seq
        c["padded_tokens"] += chunk.num_pad
        if chunk.wasted:
            c["wasted_decode_tokens"] += 1
            continue
        c["recomputed_tokens"] += max(0, min(seq.num_computed + chunk.num_tokens, seq.max_computed) - seq.num_computed)
        is_decode = chunk.num_tokens == 1 and seq.num_output > 0 and seq.num_computed >= seq.max_computed and seq.num_uncomputed == 1
        c["decode_tokens" if is_decode else "prefill_tokens"] += chunk.num_tokens
        c["sampled_tokens"] += int(chunk.samples)
    return c
