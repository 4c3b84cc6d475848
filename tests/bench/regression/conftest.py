"""Checked-in result directories for the regression tests (remade by data/make_fixtures.py,
whose docstring says what each case is)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.regression import load_runs

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data() -> Path:
    return DATA


@pytest.fixture(scope="session")
def runs():
    """runs("slow") -> the RunResults of data/slow (read once per session: do not mutate)."""
    cache: dict[str, list] = {}

    def load(*names: str) -> list:
        out = []
        for name in names:
            if name not in cache:
                cache[name] = load_runs([DATA / name])
            out += cache[name]
        return out

    return load


@pytest.fixture
def copy_case(tmp_path):
    """copy_case("padded") -> a writable copy of data/padded under tmp_path."""

    def copy(name: str) -> Path:
        target = tmp_path / name.replace("/", "_")
        shutil.copytree(DATA / name, target)
        return target

    return copy
