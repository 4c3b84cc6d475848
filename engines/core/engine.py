"""The one step loop of the four in-repo engines.

    plan = policy.schedule()           which sequences compute how many tokens (the policy)
    launched = runner.launch(plan)     one packed forward and sampling, queued on the device
    resolve(the step before)           its tokens reach the host: emit them, stop sequences
    advance(plan, launched)            sequences move on; sampled tokens are still pending

With async scheduling (the default) a step's tokens are read one step late: the host
schedules and launches step t+1 while the device runs step t, and step t+1 takes the tokens
step t sampled straight from device memory (engines.core.sequence.pending_token). The host
learns them when it waits for step t, right after launching t+1. A sequence stopping at
max_new_tokens is known at launch; one stopping at a stop token is found a step late and its
one extra token is thrown away, as in vLLM. Without it, every step is resolved before the
next is scheduled.

The engines differ only in the policy and the KV manager it owns (engines.core.build).
"""

from __future__ import annotations

import itertools
import time

from engines.api import StepOutput, StepStats
from engines.core.model_runner import Launched, ModelRunner
from engines.core.plan import StepPlan
from engines.core.policies.base import Policy
from engines.core.sequence import Sequence, Status, pending_token
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
        self.async_scheduling = policy.options.async_scheduling
        self._in_flight: Launched | None = None

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
        launched = None if plan.is_empty else self.runner.launch(plan, self._in_flight)
        if self._in_flight is not None:
            events += self._resolve(self._in_flight)
            self._in_flight = None
        if launched is not None:
            self._advance(plan, launched)
            if self.async_scheduling:
                self._in_flight = launched
            else:
                events += self._resolve(launched)
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
            cuda_graph=None if launched is None else launched.graph,
            **counts,
        )
        if launched is not None:
            launched.stats = stats  # its device time, once its tokens are resolved
            stats.device_ns = launched.device_ns  # resolved already without async scheduling
        return StepOutput(events, stats)

    def has_unfinished(self) -> bool:
        return bool(self._seqs) or bool(self._cancelled) or self._in_flight is not None

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
        self._in_flight = None
        self.runner = None  # drop the model and the KV cache

    # -- internals ------------------------------------------------------------------------

    def _advance(self, plan: StepPlan, launched: Launched) -> None:
        """Move sequences past the launched step. Runs for every sequence every step: plain
        attribute arithmetic, no properties."""
        kv = self.kv
        cache_blocks = kv.cache_full_blocks if isinstance(kv, PagedKV) and kv.prefix_caching else None
        for chunk in plan.chunks:
            seq = chunk.seq
            if chunk.wasted:
                seq.cache_len += 1
                continue
            if seq.status is Status.FINISHED:
                continue  # stopped by the token resolved since this step was launched
            seq.cache_len += chunk.num_pad + chunk.num_tokens
            seq.num_computed += chunk.num_tokens
            if seq.num_computed > seq.max_computed:
                seq.max_computed = seq.num_computed
            if cache_blocks is not None:  # before finishing: freed blocks stay cached
                cache_blocks(seq)
        pending = launched.pending
        for row, chunk in enumerate(launched.sampled):
            seq = chunk.seq
            if chunk.wasted or seq.status is Status.FINISHED:
                continue  # a padded batch's finished row, or stopped: its token is thrown away
            tokens = seq.token_ids
            tokens.append(pending_token(row))
            pending.append((seq, len(tokens) - 1, row))
            if len(tokens) - seq.num_prompt >= seq.request.max_new_tokens:
                self.policy.finish(seq)  # its last token is on the way: no more steps

    def _resolve(self, launched: Launched) -> list[TokenEvent]:
        """The launched step's tokens on the host: fill them in, emit them, stop sequences."""
        tokens = launched.tokens.wait()
        launched.device_ns = launched.tokens.device_ns(launched.started)
        if launched.stats is not None:
            launched.stats.device_ns = launched.device_ns
        events = []
        for seq, index, row in launched.pending:
            if self._seqs.get(seq.id) is not seq:
                continue  # aborted meanwhile
            token = tokens[row]
            seq.token_ids[index] = token
            done = seq.status is Status.FINISHED  # reached max_new_tokens at launch
            if not done and token in seq.request.stop_token_ids:
                done = True
                if seq.status is Status.WAITING:  # preempted while its token was on the way
                    self.policy.abort(seq)
                else:
                    self.policy.finish(seq)
            events.append(TokenEvent(seq.id, [token], finished=done))
            if done:
                del self._seqs[seq.id]
        return events


def _count(plan: StepPlan) -> dict:
    """Token counters of a plan, read before it is applied. A chunk is decode when it feeds
    the one token sampled at the previous step; prompt chunks and recomputation after a
    preemption are prefill.

    Attention: every position computed (pads and wasted rows included) scores the context
    its sequence held before the step and, causally, the step's new positions up to itself.
    A one-position chunk (decode, wasted row) scores held + 1 keys; the loop adds only what
    longer chunks score beyond that, to keep the per-decode work to one addition."""
    prefill = decode = padded = wasted = recomputed = sampled = context = longer = 0
    for chunk in plan.chunks:
        seq = chunk.seq
        held = seq.cache_len
        context += held
        if chunk.wasted:
            wasted += 1
            continue
        n, done, high = chunk.num_tokens, seq.num_computed, seq.max_computed
        end, total = done + n, len(seq.token_ids)
        if done < high:
            recomputed += min(end, high) - done
        if n == 1 and done >= high and end == total and total > seq.num_prompt:
            decode += 1  # never padded: pads only go before a prompt
        else:
            prefill += n
            new = n + chunk.num_pad
            padded += chunk.num_pad
            longer += (new - 1) * held + new * (new + 1) // 2 - 1
        if end == total:
            sampled += 1
    return dict(prefill_tokens=prefill, decode_tokens=decode, padded_tokens=padded,
                wasted_decode_tokens=wasted, recomputed_tokens=recomputed, sampled_tokens=sampled,
                context_tokens=context, attention_pairs=context + len(plan.chunks) + longer)
