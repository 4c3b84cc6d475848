"""The shared half of engines whose library works on a thread of its own (hf-generate, hf-cb).

The harness thread calls add_request / step / abort; a worker thread does the library's work
and hands each token over the moment the library produces it, through a thread-safe queue.
step() drains that queue, waiting up to `poll_s` when it is empty, so the time the harness
stamps after step() returns is at most a poll late. The library's own batching stays
invisible: StepOutput.stats is None.

Every request ends exactly once. An exception in the worker ends every request still open
with status "error" and the message, and so does a worker that dies silently: the harness
never waits on a thread that will not answer.

A subclass implements `_submit(request)` (hand a validated request to the library),
`_cancel(request_id)` (tell the library to drop it) and `_work()` (the worker's loop; it
returns soon after `stopping` is set); close() calls `_interrupt()` to hurry the library
along, joins the worker, then `_release()` to drop the model before collecting garbage.
"""

from __future__ import annotations

import gc
import queue
import threading

import torch

from engines.api import StepOutput
from engines.request import ConfigError, Request, RequestError, TokenEvent

DEFAULT_POLL_S = 0.005
JOIN_TIMEOUT_S = 60.0  # a generate() call ends at its next step once stopping is set


class ThreadedEngine:
    kind = "peer"

    def __init__(
        self,
        name: str,
        *,
        vocab_size: int,
        max_model_len: int,
        options: dict,
        model_info: dict | None,
        poll_s: float = DEFAULT_POLL_S,
    ):
        self.name = name
        self.vocab_size = vocab_size
        self.max_model_len = max_model_len
        self.options = options
        self.model_info = model_info
        self.poll_s = poll_s
        self.stopping = threading.Event()  # set by close(): the worker's loop must end
        self._events: queue.SimpleQueue[TokenEvent] = queue.SimpleQueue()
        self._cancelled: list[TokenEvent] = []  # abort()'s own events, returned by the next step
        self._unfinished: set[str] = set()  # touched by the harness thread only
        self._failure: str | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._run_worker, name=f"{name}-worker", daemon=True)

    # ---- for subclasses -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def emit(self, request_id: str, token_ids=(), finished=False, status="ok", error=None) -> None:
        """Hand new tokens of one request to the harness (any thread may call this)."""
        self._events.put(TokenEvent(request_id, list(token_ids), finished, status, error))

    def _check(self, request: Request) -> None:
        """Raise RequestError for a valid request this engine still cannot serve."""

    def _submit(self, request: Request) -> None:
        raise NotImplementedError

    def _cancel(self, request_id: str) -> None:
        raise NotImplementedError

    def _work(self) -> None:
        raise NotImplementedError

    def _interrupt(self) -> None:
        """Make the library stop soon (close() then waits for the worker to end)."""

    def _release(self) -> None:
        """Drop every reference to the model; called once the worker has ended."""

    # ---- the Engine interface ---------------------------------------------------------------

    def add_request(self, request: Request) -> None:
        if self._closed:
            raise ConfigError(f"engine {self.name!r} is closed")
        request.validate(self.vocab_size, self.max_model_len)
        if request.id in self._unfinished:
            raise RequestError(f"request {request.id!r}: a request with this id is still running")
        self._check(request)
        self._unfinished.add(request.id)
        self._submit(request)

    def step(self) -> StepOutput:
        # Read the worker's state before draining: whatever it emitted before failing or
        # exiting is then surely in the queue, and is returned ahead of the error.
        failure = self._failure
        if failure is None and not self._thread.is_alive():
            closed = f"engine {self.name!r} is closed"
            failure = closed if self._closed else f"{self.name} worker thread exited unexpectedly"
        raw = self._cancelled
        self._cancelled = []
        try:
            if not raw and failure is None:
                raw.append(self._events.get(timeout=self.poll_s))
            while True:
                raw.append(self._events.get_nowait())
        except queue.Empty:
            pass
        merged = self._merge(raw)
        if failure is not None:
            self._failure = failure
            for rid in sorted(self._unfinished):
                ev = merged.setdefault(rid, TokenEvent(rid))
                if not ev.finished:
                    ev.finished, ev.status, ev.error = True, "error", failure
        for rid, ev in merged.items():
            if ev.finished:
                self._unfinished.discard(rid)
        return StepOutput(list(merged.values()), stats=None)

    def _merge(self, raw: list[TokenEvent]) -> dict[str, TokenEvent]:
        """One event per request: a request's tokens from several library steps that arrived
        within one poll are returned together. Events of requests that already ended
        (aborted, or failed) are dropped, and so are events that carry nothing."""
        merged: dict[str, TokenEvent] = {}
        for ev in raw:
            if ev.request_id not in self._unfinished or not (ev.token_ids or ev.finished):
                continue
            seen = merged.get(ev.request_id)
            if seen is None:
                merged[ev.request_id] = ev
            elif not seen.finished:
                seen.token_ids += ev.token_ids
                seen.finished, seen.status, seen.error = ev.finished, ev.status, ev.error
        return merged

    def has_unfinished(self) -> bool:
        return bool(self._unfinished)

    def abort(self, request_id: str) -> None:
        if request_id not in self._unfinished:
            return
        # The request ends now from the harness's point of view; whatever the library still
        # sends for it is dropped by _merge once its cancelled event has been returned.
        self._cancelled.append(TokenEvent(request_id, [], True, "cancelled"))
        self._cancel(request_id)

    def describe(self) -> dict:
        return {"name": self.name, "kind": self.kind, "options": dict(self.options), "model": self.model_info}

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stopping.set()
        try:
            self._interrupt()
        finally:
            if self._thread.is_alive():
                self._thread.join(timeout=JOIN_TIMEOUT_S)
            self._release()
            gc.collect()
            if torch.cuda.is_available():
                torch.cuda.empty_cache()

    # ---- the worker thread ---------------------------------------------------------------

    def _run_worker(self) -> None:
        try:
            self._work()
        except BaseException as e:  # noqa: BLE001 - whatever it is, the requests must end
            self._failure = f"{self.name} worker failed: {type(e).__name__}: {e}"
