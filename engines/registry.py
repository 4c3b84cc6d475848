"""Every engine the harness can drive, by name: the one mapping a reader looks at.

The four in-repo engines are one step loop (engines.core.engine.LLMEngine) with a different
scheduling policy and KV layout each. Peers wrap other implementations behind the same
interface. Factories are imported on first use, so listing engines is cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from engines.api import Engine
from engines.request import ConfigError


@dataclass(frozen=True)
class EngineEntry:
    factory: str  # "module:function", called as factory(name=..., model=..., **kwargs)
    kind: str  # "in-repo", "peer" or "test"
    summary: str


ENGINES: dict[str, EngineEntry] = {
    "naive": EngineEntry(
        "engines.core.build:build_engine",
        "in-repo",
        "padded batching: left-padded prompts, rectangular KV, batch runs to its longest request",
    ),
    "static": EngineEntry(
        "engines.core.build:build_engine",
        "in-repo",
        "static batching: ragged (unpadded) batch, finished requests leave, batch barrier stays",
    ),
    "continuous": EngineEntry(
        "engines.core.build:build_engine",
        "in-repo",
        "continuous batching: per-step scheduling, chunked prefill, KV slot per request",
    ),
    "paged": EngineEntry(
        "engines.core.build:build_engine",
        "in-repo",
        "continuous batching with a paged KV cache, preemption and optional prefix caching",
    ),
    "hf-generate": EngineEntry(
        "engines.peers.hf_generate:build_engine",
        "peer",
        "transformers model.generate on left-padded batches",
    ),
    "hf-cb": EngineEntry(
        "engines.peers.hf_cb:build_engine",
        "peer",
        "transformers' own continuous batching (ContinuousBatchingManager)",
    ),
    "openai": EngineEntry(
        "engines.peers.openai_http:build_engine",
        "peer",
        "any OpenAI-compatible server over HTTP (options: url, served_model, api_key, timeout)",
    ),
    "mock": EngineEntry(
        "engines.mock_build:build_engine",
        "test",
        "no model: emits deterministic tokens, for testing the harness and load generator",
    ),
}

IN_REPO = [name for name, e in ENGINES.items() if e.kind == "in-repo"]


def create_engine(name: str, model: str = "tiny", **kwargs) -> Engine:
    """Build engine `name` on `model` (a preset name or a local checkpoint directory).

    kwargs: device, dtype, seed, and engine options (see engines.core.options.EngineOptions).
    """
    entry = ENGINES.get(name)
    if entry is None:
        raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(ENGINES)}")
    module_name, func_name = entry.factory.split(":")
    factory = getattr(importlib.import_module(module_name), func_name)
    return factory(name=name, model=model, **kwargs)
