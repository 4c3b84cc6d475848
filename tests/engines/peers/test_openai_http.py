"""The `openai` engine: any OpenAI-compatible server behind the Engine interface, so the
normal runner and `bench compare` put a server beside in-process engines."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from bench.cli import main as bench_main
from bench.results import find_runs, load_run
from bench.serve import ServeOptions, start_server
from bench.session import run_one
from engines.mock import MockEngine
from engines.peers.openai_http import PLACEHOLDER_ID, OpenAIHttpEngine
from engines.registry import create_engine
from engines.request import ConfigError, Request, RequestError

pytestmark = pytest.mark.timeout(120)
VOCAB, MAX_LEN = 2048, 512
MOCK = f"mock:vocab_size={VOCAB},max_model_len={MAX_LEN}"


def drain(engine, timeout_s=20.0):
    """Step until nothing is unfinished; every event, in order."""
    events, deadline = [], time.monotonic() + timeout_s
    while engine.has_unfinished():
        assert time.monotonic() < deadline, "engine never finished"
        events.extend(engine.step().events)
    return events


@pytest.fixture
def server():
    with start_server(MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, step_time_s=0.001)) as srv:
        yield srv


def test_runner_over_http_gives_the_in_process_tokens(server, tmp_path):
    workload = "synthetic:num_requests=12,prompt=uniform(4,40),output=uniform(2,20),arrival=poisson(200),seed=5"
    http = run_one(f"openai:url={server.url}", "tiny", workload, tmp_path / "http", progress=False, roofline=False)
    local = run_one(MOCK, "tiny", workload, tmp_path / "local", progress=False, roofline=False)
    assert http.summary["counts"]["ok"] == 12
    assert http.requests.output_token_ids.map(list).tolist() == local.requests.output_token_ids.map(list).tolist()
    assert http.steps.empty and http.summary["engine"] is None  # the server's steps are not visible
    assert http.manifest["engine"]["options"]["url"] == server.url


def test_requests_are_checked_against_the_servers_limits(server):
    engine = create_engine("openai", url=server.url)
    try:
        assert engine.describe()["options"]["max_model_len"] == MAX_LEN
        with pytest.raises(RequestError, match="exceeds the context length"):
            engine.add_request(Request("long", (3,) * 500, 100))
        assert not engine.has_unfinished()
    finally:
        engine.close()


def test_abort_cancels_on_the_server_too():
    mock = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, step_time_s=0.005)
    with start_server(mock) as srv:
        engine = create_engine("openai", url=srv.url)
        try:
            engine.add_request(Request("a", (3, 4), 400))
            while not any(e.token_ids for e in engine.step().events):
                pass
            engine.abort("a")
            events = drain(engine)
            assert events[-1].finished and events[-1].status == "cancelled"
            deadline = time.monotonic() + 10
            while mock.has_unfinished():  # the server saw the disconnect and aborted it
                assert time.monotonic() < deadline
                time.sleep(0.02)
        finally:
            engine.close()


def test_http_errors_become_request_statuses():
    mock = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, max_batch=1, step_time_s=0.02)
    with start_server(mock, options=ServeOptions(max_waiting=1)) as srv:
        # vocab_size given larger than the server's: the server, not the client, refuses the ids
        engine = create_engine("openai", url=srv.url, vocab_size=VOCAB * 2)
        try:
            engine.add_request(Request("bad", (VOCAB + 5,), 3))
            for i in range(4):
                engine.add_request(Request(f"r{i}", (3,), 3))
            finished = {e.request_id: e for e in drain(engine) if e.finished}
            assert finished["bad"].status == "error" and "HTTP 400" in finished["bad"].error
            statuses = sorted(finished[f"r{i}"].status for i in range(4))
            assert "rejected" in statuses and "ok" in statuses
        finally:
            engine.close()


def test_refuses_remote_and_unreachable_servers():
    with pytest.raises(ConfigError, match="not a loopback address"):
        OpenAIHttpEngine("http://10.255.255.1:8000")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError, match="cannot read"):
        OpenAIHttpEngine(f"http://127.0.0.1:{port}")
    with pytest.raises(ConfigError, match="unknown options"):
        create_engine("openai", url="http://127.0.0.1:1", max_batch=4)


class TextOnlyServer:
    """A server that streams text without token ids (as most do), and whose usage says
    one token more than it showed: counting falls back to chunks, corrected by usage."""

    def __init__(self):
        async def models(request):
            return JSONResponse({"data": [{"id": "other", "max_model_len": 64}]})

        async def completions(request):
            async def stream():
                for piece in ["Hel", "lo", ""]:
                    chunk = {"choices": [{"index": 0, "text": piece, "finish_reason": None}]}
                    yield f"data: {json.dumps(chunk)}\n\n"
                    await asyncio.sleep(0.005)
                yield 'data: {"choices": [], "usage": {"completion_tokens": 3}}\n\n'
                yield "data: [DONE]\n\n"

            return StreamingResponse(stream(), media_type="text/event-stream")

        app = Starlette(routes=[Route("/v1/models", models), Route("/v1/completions", completions, methods=["POST"])])
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, log_level="warning"))
        self.thread = threading.Thread(target=lambda: asyncio.run(self.server.serve(sockets=[self.sock])), daemon=True)

    def __enter__(self):
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(10)


def test_servers_without_token_ids_are_counted_by_chunks_and_usage():
    with TextOnlyServer() as srv:
        engine = create_engine("openai", url=srv.url, vocab_size=100)
        try:
            assert engine.describe()["options"]["served_model"] == "other"
            engine.add_request(Request("t", (3, 4), 5))
            events = drain(engine)
        finally:
            engine.close()
    tokens = [t for e in events for t in e.token_ids]
    assert tokens == [PLACEHOLDER_ID] * 3  # "Hel", "lo", and one more that usage reported
    assert events[-1].finished and events[-1].status == "ok"


def test_bench_compare_puts_a_server_beside_an_in_process_engine(server, tmp_path):
    out = tmp_path / "cmp"
    code = bench_main(["compare", "--engines", MOCK, f"openai:url={server.url}", "--workloads",
                       "synthetic:num_requests=8,prompt=fixed(8),output=fixed(4)", "--out", str(out),
                       "--no-progress", "--no-roofline"])
    assert code == 0
    runs = [load_run(p) for p in find_runs([out])]
    assert sorted(r.manifest["engine"]["name"] for r in runs) == ["mock", "openai"]
    assert all(r.summary["counts"]["ok"] == 8 for r in runs)
    assert (out / "report.html").is_file()
