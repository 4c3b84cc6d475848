"""The ASGI response of one generation request: streamed as server-sent events or whole.

The status is chosen when the engine first answers: tokens give 200, a request the engine
refuses gives 400 and one that fails before its first token gives 500. A failure after
tokens were streamed can only be told in the stream: an `{"error": ...}` event, then
`[DONE]`. While it waits, the response also listens for the client going away; a client that
disconnects gets its request aborted in the engine, which frees its KV memory.
"""

from __future__ import annotations

import asyncio
import json

from bench.serve.engine_thread import EngineThread, Failure
from bench.serve.protocol import ApiError, GenerationRequest
from bench.serve.responses import SSE_DONE, ResponseShape, sse, usage
from engines.request import Request, TokenEvent

_SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache")]


async def send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    payload = json.dumps(body, separators=(",", ":")).encode()
    raw = [(b"content-type", b"application/json")]
    raw += [(k.lower().encode(), str(v).encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload, "more_body": False})


def _error_for(failure: Failure | TokenEvent) -> ApiError:
    if isinstance(failure, Failure):
        if failure.invalid:
            return ApiError(400, failure.message, code="invalid_request")
        return ApiError(500, failure.message, type="server_error", code="engine_error")
    message = failure.error or f"request ended with status {failure.status}"
    return ApiError(500, message, type="server_error", code=f"engine_{failure.status}")


async def _wait_for_disconnect(receive) -> None:
    # The body has been read: the next message the server gives is the disconnect.
    while (await receive())["type"] != "http.disconnect":
        pass


class GenerationResponse:
    def __init__(
        self,
        engine_thread: EngineThread,
        request: Request,
        params: GenerationRequest,
        shape: ResponseShape,
        decoder,
        events: asyncio.Queue,
    ):
        self.engine_thread = engine_thread
        self.request = request
        self.params = params
        self.shape = shape
        self.decoder = decoder
        self.events = events
        self._tokens: list[int] = []

    async def __call__(self, scope, receive, send) -> None:
        respond = asyncio.ensure_future(self._respond(send))
        watch = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            done, _ = await asyncio.wait({respond, watch}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is shutting down
            respond.cancel()
            watch.cancel()
            self.engine_thread.abort(self.request.id)
            raise
        watch.cancel()
        if respond in done:
            if respond.exception() is not None:
                self.engine_thread.abort(self.request.id)
            respond.result()
            return
        respond.cancel()
        self.engine_thread.abort(self.request.id)

    async def _respond(self, send) -> None:
        first = await self.events.get()
        if isinstance(first, Failure) or (first.finished and first.status != "ok" and not first.token_ids):
            err = _error_for(first)
            await send_json(send, err.status, err.body())
            return
        if self.params.stream:
            await self._stream(send, first)
        else:
            await self._whole(send, first)

    def _finish_reason(self) -> str:
        # engines end early only on a stop token; otherwise they ran to max_tokens
        return "length" if len(self._tokens) >= self.request.max_new_tokens else "stop"

    def _usage(self) -> dict:
        return usage(len(self.request.prompt_ids), len(self._tokens))

    def _event_bytes(self, event: TokenEvent) -> bytes:
        """One SSE event per token; the request's last token carries finish_reason."""
        p = self.params
        out = bytearray()
        ids = event.token_ids
        for i, t in enumerate(ids):
            self._tokens.append(t)
            last = event.finished and event.status == "ok" and i == len(ids) - 1
            out += self._token_chunk(self.decoder.push([t]), [t], last)
        if event.finished and event.status == "ok" and not ids:
            out += self._token_chunk("", [], True)
        if event.finished and event.status != "ok":
            out += sse(_error_for(event).body())
        if event.finished:
            if p.include_usage:
                out += sse(self.shape.usage_chunk(self._usage()))
            out += SSE_DONE
        return bytes(out)

    def _token_chunk(self, text: str, ids: list[int], last: bool) -> bytes:
        p = self.params
        # usage rides on every chunk when asked, else on the last chunk unless a separate
        # usage chunk (include_usage) follows
        with_usage = p.continuous_usage or (last and not p.include_usage)
        reason = self._finish_reason() if last else None
        return sse(self.shape.chunk(text, ids, reason, self._usage() if with_usage else None))

    async def _stream(self, send, event: TokenEvent | Failure) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
        while True:
            # whatever has arrived goes out in one write
            body = bytearray()
            while True:
                if isinstance(event, Failure):
                    body += self._failure_bytes(event)
                    done = True
                else:
                    body += self._event_bytes(event)
                    done = event.finished
                if done or self.events.empty():
                    break
                event = self.events.get_nowait()
            await send({"type": "http.response.body", "body": bytes(body), "more_body": not done})
            if done:
                return
            event = await self.events.get()

    def _failure_bytes(self, failure: Failure) -> bytes:
        return sse(_error_for(failure).body()) + SSE_DONE

    async def _whole(self, send, event: TokenEvent) -> None:
        text = []
        while True:
            if isinstance(event, Failure) or (event.finished and event.status != "ok"):
                err = _error_for(event)
                await send_json(send, err.status, err.body())
                return
            self._tokens.extend(event.token_ids)
            text.append(self.decoder.push(event.token_ids))
            if event.finished:
                break
            event = await self.events.get()
        body = self.shape.whole("".join(text), self._tokens, self._finish_reason(), self._usage())
        await send_json(send, 200, body)
