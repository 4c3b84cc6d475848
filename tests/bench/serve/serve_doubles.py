"""Engines for server tests: the mock engine with recorded aborts, with per-request
failures, or with a broken step."""

from __future__ import annotations

from engines.api import StepOutput
from engines.mock import MockEngine
from engines.request import Request, TokenEvent

VOCAB, MAX_LEN = 2048, 512  # the test engines' model limits

FAIL_FIRST = 13  # a prompt starting with this id fails before its first token
FAIL_LATER = 14  # ... fails after two tokens
REFUSE_ADD = 15  # ... makes add_request raise an unexpected exception


class RecordingEngine(MockEngine):
    """The mock engine, remembering every abort."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.aborted: list[str] = []

    def abort(self, request_id: str) -> None:
        self.aborted.append(request_id)
        super().abort(request_id)

    @property
    def holding(self) -> int:
        """Requests the engine still holds (waiting or running)."""
        return len(self._waiting) + len(self._running)


class FailingEngine(MockEngine):
    """Fails requests chosen by their first prompt token, the way an engine reports the
    failure of one request: a finished event with status "error", nothing else affected."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._first: dict[str, int] = {}
        self._emitted: dict[str, int] = {}

    def add_request(self, request: Request) -> None:
        if request.prompt_ids[0] == REFUSE_ADD:
            raise RuntimeError("cannot take this request")
        super().add_request(request)
        self._first[request.id] = request.prompt_ids[0]

    def step(self) -> StepOutput:
        out = super().step()
        events = []
        for e in out.events:
            first = self._first.get(e.request_id)
            n = self._emitted.get(e.request_id, 0) + len(e.token_ids)
            self._emitted[e.request_id] = n
            if first == FAIL_FIRST or (first == FAIL_LATER and n > 2):
                self._running.pop(e.request_id, None)
                reason = "before the first token" if first == FAIL_FIRST else "after two tokens"
                events.append(TokenEvent(e.request_id, [], finished=True, status="error", error=f"injected failure {reason}"))
            else:
                events.append(e)
        return StepOutput(events, out.stats)


class BrokenStepEngine(MockEngine):
    """An engine whose step() raises once `broken` is set: the whole engine is gone."""

    broken = False

    def step(self) -> StepOutput:
        if self.broken:
            raise RuntimeError("device lost")
        return super().step()
