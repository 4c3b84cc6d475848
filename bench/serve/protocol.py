"""Parsing and checking OpenAI-style request bodies, and the error body every failure uses.

A request is checked in two passes: `parse_completion` / `parse_chat` check the JSON and
each field's type and fixed range; `check_context` checks what needs the tokenized prompt
(the prompt fits the context, `max_tokens` fits what is left). Every failure is an
`ApiError` naming the field (`param`) and the value, so a client sees what to fix.

Supported: the fields below. Fields OpenAI defines that this server cannot honour (`n` > 1,
`logprobs`, `echo`, `best_of` > 1, `stop` strings, penalties, `logit_bias`, `suffix`)
answer 400 when set to anything but their default; unknown fields are ignored, as vLLM does.
Extensions: `top_k`, `ignore_eos`, `stop_token_ids`, and `stream_options.continuous_usage_stats`
(usage in every chunk).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

DEFAULT_MAX_TOKENS = 16  # OpenAI's legacy completions default; used for chat too
MAX_SEED = 2**32  # the engines' sampler takes 32-bit seeds
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool")


class ApiError(Exception):
    """An HTTP error in OpenAI's shape: {"error": {"message", "type", "param", "code"}}."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {
            "error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        }


def invalid(param: str | None, message: str) -> ApiError:
    return ApiError(400, message, param=param, code="invalid_value")


@dataclass(frozen=True)
class GenerationRequest:
    """One parsed request. `prompt` is text, a list of token ids (completions) or a list of
    {"role", "content"} messages with string content (chat)."""

    kind: str  # "completion" or "chat"
    prompt: str | list[int] | list[dict]
    max_tokens: int
    max_tokens_field: str = "max_tokens"  # the field that set it, for error messages
    temperature: float = 1.0  # OpenAI's default
    top_p: float = 1.0
    top_k: int = 0  # 0: off (-1 is accepted as off too, vLLM's convention)
    seed: int | None = None
    ignore_eos: bool = False
    stop_token_ids: tuple[int, ...] = ()
    stream: bool = False
    include_usage: bool = False
    continuous_usage: bool = False
    model: str | None = None


def parse_json(body: bytes) -> dict:
    """The request body as a JSON object, or a 400 saying where the JSON breaks."""
    try:
        data = json.loads(body)
    except UnicodeDecodeError as e:
        raise invalid(None, f"request body is not UTF-8 text ({e.reason} at byte {e.start})")
    except json.JSONDecodeError as e:
        raise ApiError(
            400,
            f"request body is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}",
            code="invalid_json",
        )
    if not isinstance(data, dict):
        raise invalid(None, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def _integer(body: dict, name: str, default, lo: int | None = None, hi: int | None = None):
    value = body.get(name)
    if value is None:
        return default
    # bool is an int subclass in Python; JSON true is not a number
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(name, f"{name} must be an integer, got {_type_name(value)} {value!r}")
    if lo is not None and value < lo:
        raise invalid(name, f"{name} must be >= {lo}, got {value}")
    if hi is not None and value > hi:
        raise invalid(name, f"{name} must be <= {hi}, got {value}")
    return value


def _number(body: dict, name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(name, f"{name} must be a number, got {_type_name(value)} {value!r}")
    return float(value)


def _boolean(body: dict, name: str, default: bool, where: str | None = None) -> bool:
    value = body.get(name)
    label = f"{where}.{name}" if where else name
    if value is None:
        return default
    if not isinstance(value, bool):
        raise invalid(label, f"{label} must be true or false, got {_type_name(value)} {value!r}")
    return value


def _token_ids(value, name: str) -> list[int]:
    if not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        bad = next(t for t in value if not isinstance(t, int) or isinstance(t, bool))
        raise invalid(name, f"{name} must be a list of integer token ids, found {bad!r}")
    return list(value)


def _unsupported(body: dict) -> None:
    """400 for OpenAI fields set to something this server would silently ignore."""
    defaults = {"n": (None, 1), "best_of": (None, 1), "echo": (None, False), "suffix": (None, "")}
    for name, allowed in defaults.items():
        if name in body and body[name] not in allowed:
            raise invalid(name, f"{name}={body[name]!r} is not supported by this server")
    for name in ("logprobs", "top_logprobs"):
        if body.get(name) not in (None, False, 0):
            raise invalid(name, f"{name} is not supported by this server")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise invalid(name, f"{name} is not supported by this server (only 0)")
    if body.get("logit_bias"):
        raise invalid("logit_bias", "logit_bias is not supported by this server")
    if body.get("stop") not in (None, [], ""):
        raise invalid("stop", "stop strings are not supported; use stop_token_ids (a list of token ids)")


def _common(body: dict, kind: str, prompt, max_tokens_field: str) -> GenerationRequest:
    _unsupported(body)
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise invalid("model", f"model must be a string, got {_type_name(model)} {model!r}")
    max_tokens = _integer(body, max_tokens_field, None, lo=1)
    temperature = _number(body, "temperature", 1.0)
    if not 0.0 <= temperature <= 2.0:
        raise invalid("temperature", f"temperature must be in [0, 2], got {temperature}")
    top_p = _number(body, "top_p", 1.0)
    if not 0.0 < top_p <= 1.0:
        raise invalid("top_p", f"top_p must be in (0, 1], got {top_p}")
    top_k = _integer(body, "top_k", 0, lo=-1)
    seed = _integer(body, "seed", None, lo=0, hi=MAX_SEED - 1)
    stop_ids = body.get("stop_token_ids")
    if stop_ids is None:
        stop_ids = []
    elif not isinstance(stop_ids, list):
        raise invalid("stop_token_ids", f"stop_token_ids must be a list, got {_type_name(stop_ids)}")
    stop_ids = _token_ids(stop_ids, "stop_token_ids")
    stream = _boolean(body, "stream", False)
    options = body.get("stream_options")
    include_usage = continuous = False
    if options is not None:
        if not stream:
            raise invalid("stream_options", "stream_options is only allowed when stream is true")
        if not isinstance(options, dict):
            raise invalid("stream_options", f"stream_options must be an object, got {_type_name(options)}")
        include_usage = _boolean(options, "include_usage", False, "stream_options")
        continuous = _boolean(options, "continuous_usage_stats", False, "stream_options")
    return GenerationRequest(
        kind=kind,
        prompt=prompt,
        max_tokens=DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        max_tokens_field=max_tokens_field,
        temperature=temperature,
        top_p=top_p,
        top_k=0 if top_k == -1 else top_k,
        seed=seed,
        ignore_eos=_boolean(body, "ignore_eos", False),
        stop_token_ids=tuple(stop_ids),
        stream=stream,
        include_usage=include_usage,
        continuous_usage=continuous,
        model=model,
    )


def parse_completion(body: dict) -> GenerationRequest:
    """POST /v1/completions: `prompt` is text, a list of token ids, or a one-element list of
    either (batches of several prompts are refused: send one request per prompt)."""
    if "prompt" not in body:
        raise invalid("prompt", "prompt is required")
    prompt = body["prompt"]
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        if len(prompt) != 1:
            raise invalid("prompt", f"batches of {len(prompt)} prompts are not supported; send one request per prompt")
        prompt = prompt[0]
    if isinstance(prompt, str):
        if not prompt:
            raise invalid("prompt", "prompt is empty")
    elif isinstance(prompt, list):
        if not prompt:
            raise invalid("prompt", "prompt is empty")
        prompt = _token_ids(prompt, "prompt")
    else:
        raise invalid("prompt", f"prompt must be a string or a list of token ids, got {_type_name(prompt)}")
    return _common(body, "completion", prompt, "max_tokens")


def _message_text(content, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for i, part in enumerate(content):
            if not (isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)):
                raise invalid(f"{where}[{i}]", f"{where}[{i}] must be {{\"type\": \"text\", \"text\": ...}}")
            parts.append(part["text"])
        return "".join(parts)
    raise invalid(where, f"{where} must be a string or a list of text parts, got {_type_name(content)}")


def parse_chat(body: dict) -> GenerationRequest:
    """POST /v1/chat/completions: `messages` is a non-empty list of {"role", "content"}."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        what = "an empty list" if messages == [] else _type_name(messages)
        raise invalid("messages", f"messages must be a non-empty list of messages, got {what}")
    parsed = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise invalid(f"messages[{i}]", f"messages[{i}] must be an object, got {_type_name(m)}")
        role = m.get("role")
        if role not in CHAT_ROLES:
            raise invalid(f"messages[{i}].role", f"messages[{i}].role must be one of {CHAT_ROLES}, got {role!r}")
        parsed.append({"role": role, "content": _message_text(m.get("content"), f"messages[{i}].content")})
    field_name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    return _common(body, "chat", parsed, field_name)


def check_context(req: GenerationRequest, prompt_len: int, max_model_len: int) -> None:
    """400 when the prompt cannot fit the context, or max_tokens does not fit what is left."""
    if prompt_len == 0:
        raise invalid("prompt" if req.kind == "completion" else "messages", "prompt is empty after tokenization")
    if prompt_len >= max_model_len:
        raise invalid(
            "prompt" if req.kind == "completion" else "messages",
            f"prompt is {prompt_len} tokens; the context length is {max_model_len}, "
            f"which leaves no room for output (at most {max_model_len - 1} prompt tokens)",
        )
    room = max_model_len - prompt_len
    if req.max_tokens > room:
        name = req.max_tokens_field
        raise invalid(
            name,
            f"{name}={req.max_tokens} with a {prompt_len}-token prompt exceeds the context "
            f"length {max_model_len}; at most {room} is allowed",
        )
