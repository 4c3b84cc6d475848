"""A real server on 127.0.0.1 (a free port) around a test engine, and an HTTP client."""

from __future__ import annotations

import httpx
import pytest

from bench.serve import ServeOptions, start_server
from tests.bench.serve.serve_doubles import MAX_LEN, VOCAB, RecordingEngine


@pytest.fixture
def engine():
    return RecordingEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, step_time_s=0.001)


@pytest.fixture
def server(engine):
    with start_server(engine, options=ServeOptions(model_name="mock-model")) as srv:
        yield srv


@pytest.fixture
def client(server):
    with httpx.Client(base_url=server.url, timeout=20) as c:
        yield c
