"""A model-free engine with the full engine interface, for testing the harness and for
measuring the load generator against a minimal server (the mock server of guidellm).

Each step emits one token for up to `max_batch` running requests (first come, first served)
after sleeping `step_time_s`; the token is a pure function of (prompt, position), so its
output is reproducible. Not a batching strategy: it computes nothing.
"""

from __future__ import annotations

import time
from collections import deque

from engines.api import StepOutput, StepStats
from engines.request import Request, TokenEvent


class MockEngine:
    name = "mock"

    def __init__(
        self,
        vocab_size: int = 32000,
        max_model_len: int = 1 << 20,
        max_batch: int = 256,
        step_time_s: float = 0.0,
    ):
        self.vocab_size = vocab_size
        self.max_model_len = max_model_len
        self.max_batch = max_batch
        self.step_time_s = step_time_s
        self._waiting: deque[Request] = deque()
        self._running: dict[str, tuple[Request, int]] = {}  # id -> (request, tokens emitted)
        self._aborted: list[str] = []

    def add_request(self, request: Request) -> None:
        request.validate(self.vocab_size, self.max_model_len)
        self._waiting.append(request)

    def _token(self, request: Request, index: int) -> int:
        return (sum(request.prompt_ids) * 31 + index * 7919) % self.vocab_size

    def step(self) -> StepOutput:
        start = time.perf_counter_ns()
        events = [TokenEvent(rid, finished=True, status="cancelled") for rid in self._aborted]
        self._aborted.clear()
        while self._waiting and len(self._running) < self.max_batch:
            r = self._waiting.popleft()
            self._running[r.id] = (r, 0)
        if self.step_time_s > 0:
            time.sleep(self.step_time_s)
        for rid, (r, n) in list(self._running.items()):
            tok = self._token(r, n)
            n += 1
            done = n >= r.max_new_tokens or tok in r.stop_token_ids
            events.append(TokenEvent(rid, [tok], finished=done))
            if done:
                del self._running[rid]
            else:
                self._running[rid] = (r, n)
        stats = StepStats(
            start_ns=start,
            end_ns=time.perf_counter_ns(),
            num_seqs=len(events),
            decode_tokens=len(events),
            sampled_tokens=len(events),
            queue_len=len(self._waiting),
            running=len(self._running),
        )
        return StepOutput(events, stats)

    def has_unfinished(self) -> bool:
        return bool(self._waiting or self._running or self._aborted)

    def abort(self, request_id: str) -> None:
        if request_id in self._running:
            del self._running[request_id]
        else:
            kept = [r for r in self._waiting if r.id != request_id]
            if len(kept) == len(self._waiting):
                return
            self._waiting = deque(kept)
        self._aborted.append(request_id)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "options": {
                "vocab_size": self.vocab_size,
                "max_model_len": self.max_model_len,
                "max_batch": self.max_batch,
                "step_time_s": self.step_time_s,
            },
            "model": None,
        }

    def close(self) -> None:
        pass
