"""The one thread that drives the engine: engines are not thread-safe, so only it calls them.

The HTTP side (an asyncio loop) hands over work through a thread-safe command queue and never
waits on the engine; the thread answers through `loop.call_soon_threadsafe`, once per step
with every event of that step, so a slow client never slows a step down.

Admission is bounded: at most `max_waiting` requests may wait for their first token; the
next one is refused at once (`Overloaded`, the server answers 429) instead of queueing
without bound. A request the engine fails ends with a `Failure` for it alone; an engine whose
`step()` raises is broken, so every request in it fails and new ones are refused.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from bench.serve.metrics import ServerMetrics
from engines.api import Engine
from engines.request import Request, RequestError, TokenEvent

log = logging.getLogger(__name__)


class Overloaded(Exception):
    """The admission queue is full."""


class EngineDown(Exception):
    """The engine thread has stopped (a failed step, or shutdown)."""


@dataclass
class Failure:
    """Delivered instead of tokens when the engine cannot serve a request.
    invalid: the engine refused it as bad input (RequestError), else it failed inside."""

    message: str
    invalid: bool = False


Sink = Callable[[object], None]  # called on the event loop with a TokenEvent or a Failure


@dataclass
class _Tracked:
    sink: Sink
    queued_ns: int
    prompt_tokens: int
    first_ns: int | None = None
    last_ns: int | None = None
    tokens: int = 0


_STOP = object()


class EngineThread:
    def __init__(self, engine: Engine, metrics: ServerMetrics, *, max_waiting: int = 256):
        if max_waiting < 1:
            raise ValueError(f"max_waiting must be >= 1, got {max_waiting}")
        self.engine = engine
        self.metrics = metrics
        self.max_waiting = max_waiting
        self._commands: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards _waiting, _error and command puts
        self._waiting = 0  # submitted, no token yet
        self._error: str | None = None
        self._active: dict[str, _Tracked] = {}  # engine thread only
        self._outbox: list[tuple[Sink, object]] = []  # engine thread only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ---- called from the event loop -------------------------------------------------------

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name=f"engine-{self.engine.name}", daemon=True)
        self._thread.start()

    @property
    def error(self) -> str | None:
        return self._error

    @property
    def waiting(self) -> int:
        return self._waiting

    def submit(self, request: Request, sink: Sink) -> None:
        """Queue `request`; its events go to `sink` on the event loop. Raises Overloaded or
        EngineDown without queueing anything."""
        tracked = _Tracked(sink, time.perf_counter_ns(), len(request.prompt_ids))
        with self._lock:
            if self._error is not None:
                raise EngineDown(self._error)
            if self._waiting >= self.max_waiting:
                raise Overloaded(f"{self._waiting} requests already waiting (max_waiting={self.max_waiting})")
            self._waiting += 1
            self.metrics.waiting.set(self._waiting)
            self._commands.put(("add", request, tracked))

    def abort(self, request_id: str) -> None:
        """Cancel a request (its client went away): the engine frees its memory."""
        self._commands.put(("abort", request_id))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop stepping; requests still in flight end with a Failure."""
        if self._thread is None:
            return
        self._commands.put(_STOP)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.error("engine thread did not stop within %.1f s", timeout_s)

    # ---- the engine thread ----------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                # idle: block for the next command; busy: take what is there and step
                block = not self.engine.has_unfinished()
                while True:
                    try:
                        cmd = self._commands.get() if block else self._commands.get_nowait()
                    except queue.Empty:
                        break
                    block = False
                    if cmd is _STOP:
                        self._shut_down("the server is shutting down")
                        return
                    self._apply(cmd)
                if self.engine.has_unfinished():
                    self._step()
                self._flush()
        except BaseException as e:  # a broken engine: its state is unknown, so stop using it
            log.error("engine failed; refusing new requests:\n%s", traceback.format_exc())
            self._shut_down(f"engine failed: {type(e).__name__}: {e}")

    def _shut_down(self, message: str) -> None:
        with self._lock:
            if self._error is None:
                self._error = message
        # nothing new can be queued now that _error is set (submit checks it under the lock)
        while True:
            try:
                cmd = self._commands.get_nowait()
            except queue.Empty:
                break
            if cmd is not _STOP and cmd[0] == "add":
                self._outbox.append((cmd[2].sink, Failure(message)))
                self._started(None)
        for tracked in self._active.values():
            self._outbox.append((tracked.sink, Failure(message)))
            if tracked.first_ns is None:
                self._started(None)
        self._active.clear()
        self._flush()

    def _started(self, tracked: _Tracked | None) -> None:
        """A request left the waiting count (first token, or ended before one)."""
        with self._lock:
            self._waiting -= 1
            self.metrics.waiting.set(self._waiting)
        if tracked is not None:
            self.metrics.on_started(tracked.prompt_tokens, (tracked.first_ns - tracked.queued_ns) / 1e9)

    def _apply(self, cmd: tuple) -> None:
        if cmd[0] == "add":
            _, request, tracked = cmd
            try:
                self.engine.add_request(request)
            except RequestError as e:
                self._refuse(tracked, Failure(str(e), invalid=True), "invalid")
            except Exception as e:  # one request the engine could not take; others go on
                log.warning("add_request failed for %s: %s", request.id, e)
                self._refuse(tracked, Failure(f"{type(e).__name__}: {e}"), "error")
            else:
                self._active[request.id] = tracked
        elif cmd[0] == "abort":
            tracked = self._active.pop(cmd[1], None)
            if tracked is None:
                return  # already finished
            self.engine.abort(cmd[1])
            if tracked.first_ns is None:
                self._started(None)
            self.metrics.on_finished("cancelled", tracked.tokens, None, None)
        self._update_counts()

    def _refuse(self, tracked: _Tracked, failure: Failure, outcome: str) -> None:
        self._started(None)
        self.metrics.on_finished(outcome, 0, None, None)
        self._outbox.append((tracked.sink, failure))

    def _step(self) -> None:
        out = self.engine.step()
        now = time.perf_counter_ns()
        self.metrics.on_step(out.stats)
        for event in out.events:
            tracked = self._active.get(event.request_id)
            if tracked is None:
                continue  # aborted: nobody is listening
            self._account(tracked, event, now)
            if event.finished:
                del self._active[event.request_id]
            self._outbox.append((tracked.sink, event))
        self._update_counts()

    def _account(self, tracked: _Tracked, event: TokenEvent, now: int) -> None:
        if event.token_ids:
            if tracked.first_ns is None:
                tracked.first_ns = now
                self._started(tracked)
            tracked.tokens += len(event.token_ids)
            tracked.last_ns = now
            self.metrics.on_tokens(len(event.token_ids))
        if event.finished:
            if tracked.first_ns is None:
                self._started(None)
            outcome = {"ok": "ok", "cancelled": "cancelled"}.get(event.status, "error")
            first_to_last = None if tracked.first_ns is None else (tracked.last_ns - tracked.first_ns) / 1e9
            self.metrics.on_finished(outcome, tracked.tokens, first_to_last, (now - tracked.queued_ns) / 1e9)

    def _update_counts(self) -> None:
        self.metrics.running.set(len(self._active) - sum(1 for t in self._active.values() if t.first_ns is None))

    def _flush(self) -> None:
        if not self._outbox:
            return
        batch, self._outbox = self._outbox, []
        try:
            self._loop.call_soon_threadsafe(_deliver, batch)
        except RuntimeError:
            pass  # the event loop is closed: nobody is left to answer


def _deliver(batch: list[tuple[Sink, object]]) -> None:
    for sink, item in batch:
        sink(item)
