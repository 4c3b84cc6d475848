"""The JSON bodies the server answers with, in OpenAI's shapes for completions and chat.

Extension: every choice carries `token_ids`, the ids behind its text, so a client can count
tokens exactly (the load generator does) instead of guessing from text.
"""

from __future__ import annotations

import json
import time


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse(data: dict | str) -> bytes:
    """One server-sent event: `data: <json>` and a blank line."""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return b"data: " + payload.encode() + b"\n\n"


SSE_DONE = sse("[DONE]")


class ResponseShape:
    """Builds the chunks and the whole-response body of one request."""

    def __init__(self, kind: str, request_id: str, model: str):
        self.kind = kind  # "completion" or "chat"
        self.request_id = request_id
        self.model = model
        self.created = int(time.time())
        self._role_sent = False

    def _envelope(self, obj: str, choices: list, usage_block: dict | None) -> dict:
        body = {"id": self.request_id, "object": obj, "created": self.created, "model": self.model, "choices": choices}
        if usage_block is not None:
            body["usage"] = usage_block
        return body

    def chunk(self, text: str, token_ids: list[int], finish_reason: str | None = None, usage_block: dict | None = None) -> dict:
        if self.kind == "completion":
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "token_ids": token_ids}
            return self._envelope("text_completion", [choice], usage_block)
        delta = {"content": text}
        if not self._role_sent:
            delta = {"role": "assistant", "content": text}
            self._role_sent = True
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason, "token_ids": token_ids}
        return self._envelope("chat.completion.chunk", [choice], usage_block)

    def usage_chunk(self, usage_block: dict) -> dict:
        """OpenAI's `include_usage` chunk: no choices, the request's usage."""
        obj = "text_completion" if self.kind == "completion" else "chat.completion.chunk"
        return self._envelope(obj, [], usage_block)

    def whole(self, text: str, token_ids: list[int], finish_reason: str, usage_block: dict) -> dict:
        if self.kind == "completion":
            choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason, "token_ids": token_ids}
            return self._envelope("text_completion", [choice], usage_block)
        message = {"role": "assistant", "content": text}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason, "token_ids": token_ids}
        return self._envelope("chat.completion", [choice], usage_block)
