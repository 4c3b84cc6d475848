"""The OpenAI-compatible HTTP app (Starlette) in front of one engine thread.

Routes: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health,
GET /metrics (Prometheus text). Everything the app knows lives on one `ServerState`, so two
apps (two engines) can share a process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from dataclasses import dataclass

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.serve.engine_thread import EngineDown, EngineThread, Overloaded
from bench.serve.generation import GenerationResponse
from bench.serve.metrics import ServerMetrics
from bench.serve.protocol import (
    ApiError,
    GenerationRequest,
    check_context,
    invalid,
    parse_chat,
    parse_completion,
    parse_json,
)
from bench.serve.responses import ResponseShape
from bench.serve.tokenizer import TokenizerError, load_tokenizer
from engines.api import Engine, model_limits
from engines.request import ConfigError, Request, SamplingParams

log = logging.getLogger(__name__)


@dataclass
class ServeOptions:
    """max_waiting: requests allowed to wait for their first token; one more gets 429.
    retry_after_s: the Retry-After a 429 carries. model_name: the id clients send and
    /v1/models lists (default: the model's name). tokenizer: a local directory with
    tokenizer files (default: the model's directory when it has them, else bytes)."""

    max_waiting: int = 256
    retry_after_s: int = 1
    model_name: str | None = None
    tokenizer: str | None = None

    def validate(self) -> None:
        if self.max_waiting < 1:
            raise ConfigError(f"max_waiting must be >= 1, got {self.max_waiting}")
        if self.retry_after_s < 0:
            raise ConfigError(f"retry_after_s must be >= 0, got {self.retry_after_s}")


def _engine_facts(engine: Engine) -> dict:
    """vocab_size, max_model_len, eos ids and model name from engine.describe()."""
    d = engine.describe()
    model = d.get("model") or {}
    config = model.get("config") or {}
    vocab, max_len = model_limits(d)
    eos = config.get("eos_token_id")
    eos_ids = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
    return {
        "engine": d.get("name", engine.name),
        "vocab_size": int(vocab),
        "max_model_len": int(max_len),
        "eos_token_ids": eos_ids,
        "model_name": model.get("name") or d.get("name", engine.name),
        "model_path": model.get("path"),
    }


class ServerState:
    def __init__(self, engine: Engine, options: ServeOptions):
        options.validate()
        facts = _engine_facts(engine)
        self.options = options
        self.engine_name = facts["engine"]
        self.vocab_size = facts["vocab_size"]
        self.max_model_len = facts["max_model_len"]
        self.eos_token_ids = facts["eos_token_ids"]
        self.model_name = options.model_name or str(facts["model_name"])
        self.tokenizer = load_tokenizer(options.tokenizer or facts["model_path"], self.vocab_size, self.eos_token_ids)
        self.metrics = ServerMetrics()
        self.engine_thread = EngineThread(engine, self.metrics, max_waiting=options.max_waiting)
        self.created = int(time.time())
        self._rng = random.Random()  # seeds for requests that give none (OpenAI: not reproducible)

    def prompt_ids(self, params: GenerationRequest) -> list[int]:
        field = "prompt" if params.kind == "completion" else "messages"
        try:
            if params.kind == "chat":
                ids = self.tokenizer.encode_chat(params.prompt)
            elif isinstance(params.prompt, str):
                ids = self.tokenizer.encode(params.prompt)
            else:
                ids = params.prompt
        except TokenizerError as e:
            raise invalid(field, str(e))
        bad = [t for t in ids if not 0 <= t < self.vocab_size]
        if bad:
            raise invalid(field, f"token id {bad[0]} is outside the vocabulary [0, {self.vocab_size}) ({len(bad)} such ids)")
        check_context(params, len(ids), self.max_model_len)
        return ids

    def build_request(self, params: GenerationRequest, prompt_ids: list[int]) -> Request:
        stop = params.stop_token_ids if params.ignore_eos else params.stop_token_ids + self.eos_token_ids
        seed = params.seed if params.seed is not None else self._rng.getrandbits(32)
        prefix = "cmpl" if params.kind == "completion" else "chatcmpl"
        return Request(
            id=f"{prefix}-{uuid.uuid4().hex}",
            prompt_ids=tuple(prompt_ids),
            max_new_tokens=params.max_tokens,
            sampling=SamplingParams(temperature=params.temperature, top_k=params.top_k, top_p=params.top_p, seed=seed),
            stop_token_ids=tuple(dict.fromkeys(stop)),
        )

    async def generate(self, http: HttpRequest, kind: str) -> GenerationResponse:
        body = parse_json(await http.body())
        params = parse_completion(body) if kind == "completion" else parse_chat(body)
        if params.model is not None and params.model != self.model_name:
            raise ApiError(404, f"model {params.model!r} is not served here; this server serves {self.model_name!r}",
                           param="model", code="model_not_found")
        request = self.build_request(params, self.prompt_ids(params))
        events: asyncio.Queue = asyncio.Queue()
        try:
            self.engine_thread.submit(request, events.put_nowait)
        except Overloaded as e:
            self.metrics.requests.labels("overloaded").inc()
            raise ApiError(429, f"server overloaded: {e}; retry later", type="rate_limit_error",
                           code="overloaded", headers={"Retry-After": str(self.options.retry_after_s)})
        except EngineDown as e:
            raise ApiError(503, f"engine unavailable: {e}", type="server_error", code="engine_down")
        shape = ResponseShape(kind, request.id, self.model_name)
        return GenerationResponse(self.engine_thread, request, params, shape, self.tokenizer.decoder(), events)


def build_app(engine: Engine, options: ServeOptions | None = None) -> Starlette:
    """The ASGI app serving `engine`. Its engine thread starts and stops with the app's
    lifespan (uvicorn runs it); the caller keeps ownership of the engine (and closes it)."""
    state = ServerState(engine, options or ServeOptions())

    async def completions(request: HttpRequest):
        return await state.generate(request, "completion")

    async def chat(request: HttpRequest):
        return await state.generate(request, "chat")

    async def models(request: HttpRequest):
        card = {
            "id": state.model_name,
            "object": "model",
            "created": state.created,
            "owned_by": "llm-batching-bench",
            "max_model_len": state.max_model_len,
            "vocab_size": state.vocab_size,
            "engine": state.engine_name,
        }
        return JSONResponse({"object": "list", "data": [card]})

    async def health(request: HttpRequest):
        error = state.engine_thread.error
        if error is not None:
            return JSONResponse({"status": "failed", "error": error}, status_code=503)
        return JSONResponse({"status": "ok", "engine": state.engine_name, "waiting": state.engine_thread.waiting})

    async def metrics(request: HttpRequest):
        body, content_type = state.metrics.exposition()
        return Response(body, headers={"content-type": content_type})

    async def api_error(request: HttpRequest, exc: ApiError):
        if exc.status == 400:
            state.metrics.requests.labels("invalid").inc()
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    async def http_error(request: HttpRequest, exc: HTTPException):
        err = ApiError(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}", code=str(exc.status_code))
        return JSONResponse(err.body(), status_code=exc.status_code)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state.engine_thread.start(asyncio.get_running_loop())
        try:
            yield
        finally:
            state.engine_thread.stop()

    app = Starlette(
        routes=[
            Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/health", health, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
        exception_handlers={ApiError: api_error, HTTPException: http_error},
        lifespan=lifespan,
    )
    app.state.server = state
    return app
