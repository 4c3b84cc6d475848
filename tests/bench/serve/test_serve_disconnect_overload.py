"""A client that goes away frees its request in the engine; a full queue answers 429 and
loses nothing it accepted."""

from __future__ import annotations

import json
import re
import threading
import time

import httpx
import pytest

from bench.serve import ServeOptions, start_server
from engines.registry import create_engine
from tests.bench.serve.serve_doubles import MAX_LEN, VOCAB, RecordingEngine

pytestmark = pytest.mark.timeout(120)


def metric(text: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def wait_for(condition, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def read_then_hang_up(client: httpx.Client, n_chunks: int, body: dict) -> str:
    """Stream a completion, read n_chunks events, close the connection; returns its id."""
    with client.stream("POST", "/v1/completions", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        seen = []
        for line in r.iter_lines():
            if line.startswith("data: {"):
                seen.append(json.loads(line[6:]))
                if len(seen) == n_chunks:
                    break
    return seen[0]["id"]


def test_disconnect_mid_stream_aborts_the_request(engine, server, client):
    request_id = read_then_hang_up(client, 3, {"prompt": [1, 2], "max_tokens": 400})
    wait_for(lambda: engine.aborted == [request_id])
    wait_for(lambda: engine.holding == 0 and not engine.has_unfinished())
    text = client.get("/metrics").text
    assert metric(text, 'bench_requests_total{outcome="cancelled"}') == 1
    assert metric(text, "bench_requests_running") == 0
    # the server goes on serving
    assert client.post("/v1/completions", json={"prompt": [1], "max_tokens": 2}).status_code == 200


def test_disconnect_while_waiting_for_a_whole_response_aborts(engine, server):
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{server.url}/v1/completions", json={"prompt": [3], "max_tokens": MAX_LEN - 1}, timeout=0.1)
    wait_for(lambda: len(engine.aborted) == 1 and engine.holding == 0)


def test_disconnect_frees_paged_kv_memory():
    engine = create_engine("paged", model="tiny", max_model_len=512)
    try:
        with start_server(engine) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
            with client.stream("POST", "/v1/completions", json={"prompt": list(range(3, 103)), "max_tokens": 300,
                                                                 "stream": True, "ignore_eos": True}) as r:
                chunks = 0
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        json.loads(line[6:])
                        chunks += 1
                        if chunks == 3:
                            used_while_running = metric(client.get("/metrics").text, "bench_kv_tokens_used")
                            break
            assert used_while_running >= 100  # the prompt's KV, at least
            wait_for(lambda: metric(client.get("/metrics").text, "bench_kv_tokens_used") == 0, timeout_s=30)
            text = client.get("/metrics").text
            assert metric(text, 'bench_requests_total{outcome="cancelled"}') == 1
            assert metric(text, "bench_kv_tokens_capacity") > 0
            r = client.post("/v1/completions", json={"prompt": [5, 6, 7], "max_tokens": 4, "ignore_eos": True})
            assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 4
    finally:
        engine.close()


def test_overload_answers_429_and_loses_nothing_accepted():
    # one request at a time, 20 ms a token: a burst of 12 cannot all wait
    engine = RecordingEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, max_batch=1, step_time_s=0.02)
    with start_server(engine, options=ServeOptions(max_waiting=3, retry_after_s=2)) as srv:
        results = []
        lock = threading.Lock()

        def call(i):
            r = httpx.post(f"{srv.url}/v1/completions", json={"prompt": [1, i], "max_tokens": 3}, timeout=30)
            with lock:
                results.append(r)

        threads = [threading.Thread(target=call, args=(i,)) for i in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        refused = [r for r in results if r.status_code == 429]
        accepted = [r for r in results if r.status_code != 429]
        assert refused, "a burst beyond max_waiting must be refused"
        assert all(r.headers["retry-after"] == "2" for r in refused)
        assert all(r.json()["error"]["type"] == "rate_limit_error" for r in refused)
        # every accepted request completed in full
        assert accepted and all(r.status_code == 200 for r in accepted)
        assert all(r.json()["usage"]["completion_tokens"] == 3 for r in accepted)
        text = httpx.get(f"{srv.url}/metrics").text
        assert metric(text, 'bench_requests_total{outcome="overloaded"}') == len(refused)
        assert metric(text, 'bench_requests_total{outcome="ok"}') == len(accepted)
        assert metric(text, "bench_requests_waiting") == 0
        # and the server is still alive
        assert httpx.get(f"{srv.url}/health").json()["status"] == "ok"
        assert httpx.post(f"{srv.url}/v1/completions", json={"prompt": [1], "max_tokens": 1}).status_code == 200
