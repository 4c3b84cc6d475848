"""Fixtures of the bench tests."""

from __future__ import annotations

import pytest

import bench.session
from engines.registry import ENGINES, EngineEntry
from tests.bench.helpers import Exploding


@pytest.fixture
def exploding_engine(monkeypatch):
    """Registers engine 'boom' (KeyboardInterrupt at its 4th step) and 'crash' (RuntimeError)."""
    made = {"boom": lambda: Exploding(KeyboardInterrupt(), 4, max_batch=2), "crash": lambda: Exploding(RuntimeError("device lost"), 4, max_batch=2)}
    for name in made:
        monkeypatch.setitem(ENGINES, name, EngineEntry("engines.mock_build:build_engine", "test", "test engine"))
    real = bench.session.create_engine

    def fake_create(name, model="tiny", **kw):
        if name in made:
            engine = made[name]()
            engine.name = name
            return engine
        return real(name, model, **kw)

    monkeypatch.setattr(bench.session, "create_engine", fake_create)
