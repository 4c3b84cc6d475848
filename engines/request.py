"""The request type every engine takes, and the events every engine gives back.

Workloads build `Request`s, the harness hands them to an engine with `add_request`, and the
engine answers with `TokenEvent`s from `step()`. Nothing here knows about batching.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class RequestError(ValueError):
    """A request that can never be served (bad input). Raised by `add_request`; no other
    request is affected."""


class ConfigError(ValueError):
    """An engine, model or workload configuration that cannot work, named in the message."""


@dataclass(frozen=True)
class SamplingParams:
    """How the next token is chosen. temperature 0 means greedy (argmax).

    Random sampling is reproducible per request: the noise for output token i depends only on
    (seed, i), so a request gives the same tokens whatever it is batched with, and after a
    preemption and recompute.
    """

    temperature: float = 0.0
    top_k: int = 0  # 0: no top-k cut
    top_p: float = 1.0  # 1.0: no nucleus cut
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0

    def validate(self) -> None:
        if not (self.temperature >= 0.0):
            raise RequestError(f"temperature must be >= 0, got {self.temperature!r}")
        if self.top_k < 0:
            raise RequestError(f"top_k must be >= 0 (0 = off), got {self.top_k!r}")
        if not (0.0 < self.top_p <= 1.0):
            raise RequestError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if not (0 <= self.seed < 2**32):
            raise RequestError(f"seed must be in [0, 2**32), got {self.seed!r}")


GREEDY = SamplingParams()


@dataclass(frozen=True)
class Request:
    """One generation request.

    arrival_s: when the workload says it arrives, seconds from the workload's start (0 for
    offline runs). stop_token_ids: generation ends early on any of these (empty: always run to
    max_new_tokens, as benchmarks do).
    """

    id: str
    prompt_ids: tuple[int, ...]
    max_new_tokens: int
    arrival_s: float = 0.0
    sampling: SamplingParams = GREEDY
    stop_token_ids: tuple[int, ...] = ()

    def validate(self, vocab_size: int, max_model_len: int) -> None:
        """Raise RequestError naming the problem if this request can never be served."""
        if len(self.prompt_ids) == 0:
            raise RequestError(f"request {self.id!r}: empty prompt")
        if self.max_new_tokens < 1:
            raise RequestError(
                f"request {self.id!r}: max_new_tokens must be >= 1, got {self.max_new_tokens}"
            )
        bad = [t for t in self.prompt_ids if not (0 <= t < vocab_size)]
        if bad:
            raise RequestError(
                f"request {self.id!r}: token id {bad[0]} outside the vocabulary [0, {vocab_size})"
                f" ({len(bad)} such ids)"
            )
        total = len(self.prompt_ids) + self.max_new_tokens
        if total > max_model_len:
            raise RequestError(
                f"request {self.id!r}: prompt ({len(self.prompt_ids)}) + max_new_tokens "
                f"({self.max_new_tokens}) = {total} tokens exceeds the context length "
                f"max_model_len={max_model_len}"
            )
        self.sampling.validate()


# Why a request ended. "ok" covers both reaching max_new_tokens and hitting a stop token.
STATUSES = ("ok", "error", "timeout", "cancelled", "rejected")


@dataclass
class TokenEvent:
    """New tokens of one request from one engine step; `finished` on its last event.

    A request that fails inside an engine ends with finished=True, status="error" and the
    error text; the tokens it produced before stay valid.
    """

    request_id: str
    token_ids: list[int] = field(default_factory=list)
    finished: bool = False
    status: str = "ok"
    error: str | None = None
