"""The interface between the harness and any engine: in-repo, library peer, or HTTP.

The harness drives an engine with two calls: `add_request` when a request arrives, and
`step` while anything is unfinished. `step` does one unit of work (one forward for the
in-repo engines; a short wait for output for engines that run on their own thread) and
returns what it produced. The harness reads the clock after `step` returns, so the tokens
it returns must already be on the host.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Protocol, runtime_checkable

from engines.request import ConfigError, Request, TokenEvent


@dataclass
class StepStats:
    """What one engine step did. Counters are tokens unless named otherwise.

    prefill_tokens / decode_tokens: useful tokens computed for prompts (and recomputed
    context) / for generation. padded_tokens: pad positions computed (padded engines).
    wasted_decode_tokens: decode tokens computed for requests that had already finished
    (`naive`: finished rows keep computing until the batch ends). idle_slots: batch slots
    held empty by a batch barrier while requests waited (`static`). kv_tokens_used: KV
    positions holding real context; kv_tokens_reserved: KV positions set aside for running
    requests (used + reserved-but-empty); kv_tokens_capacity: the cache's whole size.
    """

    start_ns: int = 0  # perf_counter_ns, absolute; the harness rebases to the run start
    end_ns: int = 0
    num_seqs: int = 0
    prefill_tokens: int = 0
    decode_tokens: int = 0
    padded_tokens: int = 0
    wasted_decode_tokens: int = 0
    sampled_tokens: int = 0
    kv_tokens_used: int = 0
    kv_tokens_reserved: int = 0
    kv_tokens_capacity: int = 0
    queue_len: int = 0  # requests waiting inside the engine after this step was planned
    running: int = 0  # requests holding KV memory after this step
    idle_slots: int = 0
    preemptions: int = 0
    recomputed_tokens: int = 0  # prompt/output tokens computed again after a preemption
    prefix_cache_hit_tokens: int = 0  # prompt tokens found in the prefix cache this step
    # what the step's attention does, for the bound of an engine's own steps
    # (bench.roofline.steps_bound): context_tokens are the cache entries its sequences held
    # before the step (K/V it reads); attention_pairs the (query, key) pairs it scores, each
    # new position against the context and, causally, the step's own positions before it
    context_tokens: int = 0
    attention_pairs: int = 0
    # the step's forward replayed a captured CUDA graph (False: launched eagerly, kernel by
    # kernel); None when the step computed nothing or the engine cannot tell (peers)
    cuda_graph: bool | None = None
    # the step's time on the device (CUDA events): from a marker queued as the host starts
    # launching it to its tokens' copy to the host. Its kernels, and any wait for the host to
    # finish queuing them; not the device's idle time before the host began the step, nor
    # the previous step's work. Known once its tokens are on the host: with async scheduling
    # the engine fills it in on this object one step() call later. None on a CPU, for
    # peers, and for a step that computed nothing.
    device_ns: int | None = None

    @classmethod
    def column_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]


@dataclass
class StepOutput:
    events: list[TokenEvent] = field(default_factory=list)
    stats: StepStats | None = None  # None for engines that cannot see their own steps


@runtime_checkable
class Engine(Protocol):
    """What the harness needs from an engine. `name` is the registry name."""

    name: str

    def add_request(self, request: Request) -> None:
        """Queue a request. Raises engines.request.RequestError for a request that can
        never be served; nothing else is affected."""

    def step(self) -> StepOutput:
        """Do one unit of work; return the tokens that reached the host during it and the
        step's counters. An engine may return a step's tokens one call later (the in-repo
        engines do with async scheduling: the device runs a step while the host plans the
        next), so a caller keeps calling while has_unfinished()."""

    def has_unfinished(self) -> bool:
        """True while any added request has not yet had its finished event."""

    def abort(self, request_id: str) -> None:
        """Cancel a request: its memory is freed and it ends with status "cancelled"."""

    def describe(self) -> dict:
        """Engine name, options and model, for the run manifest (JSON-serialisable)."""

    def close(self) -> None:
        """Release threads and device memory."""


def model_limits(info: dict) -> tuple[int, int]:
    """(vocab_size, max_model_len) of an engine, from its describe(): the engine's own
    max_model_len option wins over the model's max_position_embeddings."""
    model = info.get("model") or {}
    config = model.get("config") or {}
    options = info.get("options") or {}
    vocab = config.get("vocab_size") or options.get("vocab_size")
    max_len = options.get("max_model_len") or config.get("max_position_embeddings")
    if not vocab or not max_len:
        raise ConfigError(
            f"engine {info.get('name')!r}: describe() gives no "
            f"{'vocab_size' if not vocab else 'max_model_len'}; pass it as an engine option "
            f"(e.g. --engine-opt max_model_len=4096)"
        )
    return int(vocab), int(max_len)
