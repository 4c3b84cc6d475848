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
        # runs for every sequence every step: plain attribute arithmetic, no properties
        kv = self.kv
        cache_blocks = kv.cache_full_blocks if isinstance(kv, PagedKV) and kv.prefix_caching else None
        for chunk in plan.chunks:
            seq = chunk.seq
            if chunk.wasted:
                seq.cache_len += 1
                continue
            seq.cache_len += chunk.num_pad + chunk.num_tokens
            seq.num_computed += chunk.num_tokens
            if seq.num_computed > seq.max_computed:
                seq.max_computed = seq.num_computed
            if cache_blocks is not None:  # before finishing: freed blocks stay cached
                cache_blocks(seq)
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
    """Token counters of a plan, read before it is applied. A chunk is decode when it feeds
    the one token sampled at the previous step; prompt chunks and recomputation after a
    preemption are prefill."""
    prefill = decode = padded = wasted = recomputed = sampled = 0
    for chunk in plan.chunks:
        if chunk.wasted:
            wasted += 1
            continue
        seq = chunk.seq
        n, done, high = chunk.num_tokens, seq.num_computed, seq.max_computed
        end, total = done + n, len(seq.token_ids)
        padded += chunk.num_pad
        if done < high:
            recomputed += min(end, high) - done
        if n == 1 and done >= high and end == total and total > seq.num_prompt:
            decode += 1
        else:
            prefill += n
        if end == total:
            sampled += 1
    return dict(prefill_tokens=prefill, decode_tokens=decode, padded_tokens=padded,
                wasted_decode_tokens=wasted, recomputed_tokens=recomputed, sampled_tokens=sampled)
