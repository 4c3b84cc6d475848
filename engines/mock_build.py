"""Registry factory for the mock engine (engines.mock)."""

from __future__ import annotations

from engines.mock import MockEngine
from engines.request import ConfigError

_OPTIONS = {"vocab_size", "max_model_len", "max_batch", "step_time_s"}


def build_engine(name: str = "mock", model: str = "tiny", **kwargs) -> MockEngine:
    # device/dtype/seed mean nothing without a model; accept them so callers stay uniform
    for ignored in ("device", "dtype", "seed"):
        kwargs.pop(ignored, None)
    unknown = sorted(set(kwargs) - _OPTIONS)
    if unknown:
        raise ConfigError(f"mock engine: unknown options {unknown}; known: {sorted(_OPTIONS)}")
    return MockEngine(**kwargs)
