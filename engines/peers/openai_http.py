"""An engine that is a client: each request goes to an OpenAI-compatible /v1/completions
endpoint (ours, vLLM, SGLang, TGI, llama.cpp) and streams back, so the normal runner can
put a server beside in-process engines: `bench compare --engines paged,openai:url=...`.

Requests are sent as token ids (`prompt: [ids]`) with `max_tokens`, the request's sampling
parameters, `stream: true` and `stream_options.include_usage`; `ignore_eos: true` when the
request has no stop tokens (benchmarks run outputs to full length), else `stop_token_ids`.
They run on an asyncio loop on a background thread (httpx, no connection limit, so no queue
hides in the client); `step()` returns the chunks that arrived since the last call, waiting
up to `poll_s` when there are none. `StepOutput.stats` is None: the server's steps are not
visible from here.

Token counting: a chunk whose choice carries `token_ids` (this project's server always
does; vLLM does when asked with `return_token_ids=true`) gives exact ids. Otherwise every
chunk with text counts as one token with the placeholder id -1, and the usage block at the
end corrects the total (any tokens the chunks missed are added to the last event, also as
-1). Times are those the runner reads after step() returns: `bench load` times each chunk
on arrival and is the better tool when timing fidelity matters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import queue
import socket
import threading
from urllib.parse import urlsplit

import httpx

from engines.api import StepOutput
from engines.request import ConfigError, Request, RequestError, TokenEvent

PLACEHOLDER_ID = -1
_OPTIONS = {
    "url", "served_model", "api_key", "timeout", "vocab_size", "max_model_len",
    "allow_remote", "return_token_ids", "poll_s",
}  # fmt: skip


def is_loopback_url(url: str) -> bool:
    """True when every address the URL's host resolves to is a loopback address."""
    host = urlsplit(url).hostname
    if not host:
        return False
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_url(url: str, allow_remote: bool) -> str:
    """The base URL without a trailing slash or /v1; ConfigError for a bad or remote URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"url {url!r}: expected http://HOST:PORT (an OpenAI-compatible server)")
    if not allow_remote and not is_loopback_url(url):
        raise ConfigError(
            f"url {url!r}: {parts.hostname} is not a loopback address; load is sent only to this "
            f"machine unless allowed explicitly (allow_remote=true / --allow-remote)"
        )
    base = url.rstrip("/")
    return base[: -len("/v1")] if base.endswith("/v1") else base


def completion_body(request: Request, served_model: str | None) -> dict:
    """The streaming /v1/completions body of one request (token ids in, chunks out)."""
    s = request.sampling
    body = {
        "model": served_model,
        "prompt": list(request.prompt_ids),
        "max_tokens": request.max_new_tokens,
        "temperature": s.temperature,
        "top_p": s.top_p,
        "seed": s.seed,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if s.top_k:
        body["top_k"] = s.top_k
    if request.stop_token_ids:
        body["stop_token_ids"] = list(request.stop_token_ids)
    else:
        body["ignore_eos"] = True  # benchmarks generate every requested token
    return body


def fetch_model_card(base_url: str, api_key: str | None, timeout: float = 10.0) -> dict:
    """The first entry of GET /v1/models (id, and max_model_len / vocab_size when given)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        r = httpx.get(f"{base_url}/v1/models", headers=headers, timeout=timeout)
        r.raise_for_status()
        data = r.json()["data"]
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as e:
        raise ConfigError(f"cannot read {base_url}/v1/models: {type(e).__name__}: {e}") from e
    if not data:
        raise ConfigError(f"{base_url}/v1/models lists no model")
    return data[0]


class OpenAIHttpEngine:
    name = "openai"

    def __init__(
        self,
        url: str,
        *,
        served_model: str | None = None,
        api_key: str | None = None,
        timeout: float = 300.0,
        vocab_size: int | None = None,
        max_model_len: int | None = None,
        allow_remote: bool = False,
        return_token_ids: bool = False,
        poll_s: float = 0.001,
    ):
        if timeout <= 0 or poll_s <= 0:
            raise ConfigError(f"openai engine: timeout and poll_s must be > 0, got {timeout}, {poll_s}")
        self.base_url = check_url(url, allow_remote)
        self.api_key = api_key
        card = fetch_model_card(self.base_url, api_key)
        self.served_model = served_model or card.get("id")
        self.vocab_size = vocab_size or card.get("vocab_size")
        self.max_model_len = max_model_len or card.get("max_model_len")
        self.timeout = timeout
        self.return_token_ids = return_token_ids
        self.poll_s = poll_s
        self._events: queue.SimpleQueue[TokenEvent] = queue.SimpleQueue()
        self._unfinished: set[str] = set()
        self._tasks: dict[str, asyncio.Future] = {}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-client", daemon=True)
        self._thread.start()
        self._client = self._on_loop(self._make_client())

    def _on_loop(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    async def _make_client(self) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        # no connection cap: a capped pool would queue requests inside the client, unseen
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        return httpx.AsyncClient(base_url=self.base_url, headers=headers, limits=limits, timeout=self.timeout)

    def _body(self, request: Request) -> dict:
        body = completion_body(request, self.served_model)
        if self.return_token_ids:
            body["return_token_ids"] = True
        return body

    def add_request(self, request: Request) -> None:
        if self.vocab_size and self.max_model_len:
            request.validate(self.vocab_size, self.max_model_len)
        if request.id in self._unfinished:
            raise RequestError(f"request {request.id!r} is already in flight")
        self._unfinished.add(request.id)
        self._tasks[request.id] = asyncio.run_coroutine_threadsafe(self._run(request), self._loop)

    async def _run(self, request: Request) -> None:
        rid = request.id
        counted = 0  # tokens reported so far
        try:
            async with self._client.stream("POST", "/v1/completions", json=self._body(request)) as r:
                if r.status_code != 200:
                    text = (await r.aread()).decode(errors="replace")
                    status = "rejected" if r.status_code == 429 else "error"
                    self._finish(rid, status, f"HTTP {r.status_code}: {error_message(text)}")
                    return
                usage_tokens = None
                async for line in r.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    chunk = json.loads(payload)
                    if "error" in chunk:
                        self._finish(rid, "error", f"server error mid-stream: {error_message(payload)}")
                        return
                    ids = chunk_token_ids(chunk)
                    if ids:
                        counted += len(ids)
                        self._events.put(TokenEvent(rid, ids))
                    if chunk.get("usage"):
                        usage_tokens = chunk["usage"].get("completion_tokens")
                missing = (usage_tokens or 0) - counted
                self._events.put(TokenEvent(rid, [PLACEHOLDER_ID] * max(missing, 0), finished=True))
        except asyncio.CancelledError:
            pass  # abort() has already reported the request cancelled
        except httpx.TimeoutException as e:
            self._finish(rid, "timeout", f"no response within timeout={self.timeout:g} s ({type(e).__name__})")
        except (httpx.HTTPError, ValueError) as e:
            self._finish(rid, "error", f"{type(e).__name__}: {e}")

    def _finish(self, rid: str, status: str, error: str) -> None:
        self._events.put(TokenEvent(rid, [], finished=True, status=status, error=error))

    def step(self) -> StepOutput:
        events = []
        try:
            events.append(self._events.get(timeout=self.poll_s))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        for e in events:
            if e.finished:
                self._unfinished.discard(e.request_id)
                self._tasks.pop(e.request_id, None)
        return StepOutput(events, None)

    def has_unfinished(self) -> bool:
        return bool(self._unfinished)

    def abort(self, request_id: str) -> None:
        task = self._tasks.get(request_id)
        if task is not None and request_id in self._unfinished:
            # reported here, not by the coroutine: a task cancelled before it ran never runs
            task.cancel()
            self._finish(request_id, "cancelled", "aborted by the client")

    def describe(self) -> dict:
        return {
            "name": self.name,
            "options": {
                "url": self.base_url,
                "served_model": self.served_model,
                "timeout": self.timeout,
                "vocab_size": self.vocab_size,
                "max_model_len": self.max_model_len,
                "api_key": "set" if self.api_key else None,
                "token_counting": "token_ids per chunk when the server sends them, else one per "
                "text chunk corrected by usage.completion_tokens (placeholder id -1)",
            },
            "model": {"name": self.served_model, "server": self.base_url, "config": {"vocab_size": self.vocab_size}},
        }

    def close(self) -> None:
        if self._loop.is_closed():
            return
        for task in list(self._tasks.values()):
            task.cancel()
        self._on_loop(self._client.aclose())
        # streams whose generators were dropped mid-way close on the loop, before it stops
        self._on_loop(self._loop.shutdown_asyncgens())
        self._on_loop(asyncio.sleep(0))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()


def chunk_token_ids(chunk: dict) -> list[int]:
    """The token ids a stream chunk carries: its `token_ids`, else [-1] per chunk with text."""
    choices = chunk.get("choices") or []
    if not choices:
        return []
    choice = choices[0]
    ids = choice.get("token_ids")
    if isinstance(ids, list):
        return ids
    text = choice.get("text")
    if text is None:
        text = (choice.get("delta") or {}).get("content")
    return [PLACEHOLDER_ID] if text else []


def error_message(text: str) -> str:
    """The message of an OpenAI error body, else the start of the text."""
    try:
        err = json.loads(text)["error"]
        return err["message"] if isinstance(err, dict) else str(err)
    except (ValueError, KeyError, TypeError):
        return text[:500]


def build_engine(name: str = "openai", model: str = "tiny", **kwargs) -> OpenAIHttpEngine:
    # the harness's --model, device, dtype and seed describe in-process models; the server
    # has its own (served_model names the one to ask for)
    for ignored in ("device", "dtype", "seed"):
        kwargs.pop(ignored, None)
    unknown = sorted(set(kwargs) - _OPTIONS)
    if unknown:
        raise ConfigError(f"openai engine: unknown options {unknown}; known: {sorted(_OPTIONS)}")
    if "url" not in kwargs:
        raise ConfigError("openai engine: url is required, e.g. openai:url=http://127.0.0.1:8000")
    return OpenAIHttpEngine(**kwargs)
