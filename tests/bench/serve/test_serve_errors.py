"""Bad requests answer 400 naming the field; failures inside the engine answer 500 for the
failing request only; a broken engine is reported, not hung on."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest

from bench.serve import start_server
from tests.bench.serve.serve_doubles import (
    FAIL_FIRST,
    FAIL_LATER,
    MAX_LEN,
    REFUSE_ADD,
    VOCAB,
    BrokenStepEngine,
    FailingEngine,
)

pytestmark = pytest.mark.timeout(60)

BAD_REQUESTS = [
    # (path, body, the param the error must name, a word the message must contain)
    ("/v1/completions", {"max_tokens": 3}, "prompt", "required"),
    ("/v1/completions", {"prompt": 42}, "prompt", "string or a list"),
    ("/v1/completions", {"prompt": [1, "two"]}, "prompt", "'two'"),
    ("/v1/completions", {"prompt": [1, True]}, "prompt", "True"),
    ("/v1/completions", {"prompt": []}, "prompt", "empty"),
    ("/v1/completions", {"prompt": [[1], [2]]}, "prompt", "batches"),
    ("/v1/completions", {"prompt": [1, VOCAB]}, "prompt", "outside the vocabulary"),
    ("/v1/completions", {"prompt": [1] * MAX_LEN}, "prompt", "context length"),
    ("/v1/completions", {"prompt": [1], "max_tokens": "5"}, "max_tokens", "integer"),
    ("/v1/completions", {"prompt": [1], "max_tokens": 2.5}, "max_tokens", "integer"),
    ("/v1/completions", {"prompt": [1], "max_tokens": 0}, "max_tokens", ">= 1"),
    ("/v1/completions", {"prompt": [1] * 500, "max_tokens": 13}, "max_tokens", "at most 12"),
    ("/v1/completions", {"prompt": [1], "temperature": "hot"}, "temperature", "number"),
    ("/v1/completions", {"prompt": [1], "temperature": 2.5}, "temperature", "[0, 2]"),
    ("/v1/completions", {"prompt": [1], "top_p": 0}, "top_p", "(0, 1]"),
    ("/v1/completions", {"prompt": [1], "seed": -1}, "seed", ">= 0"),
    ("/v1/completions", {"prompt": [1], "seed": 2**40}, "seed", "<="),
    ("/v1/completions", {"prompt": [1], "stream": "yes"}, "stream", "true or false"),
    ("/v1/completions", {"prompt": [1], "ignore_eos": 1}, "ignore_eos", "true or false"),
    ("/v1/completions", {"prompt": [1], "stream_options": {"include_usage": True}}, "stream_options", "stream is true"),
    ("/v1/completions", {"prompt": [1], "stream": True, "stream_options": {"include_usage": "y"}},
     "stream_options.include_usage", "true or false"),
    ("/v1/completions", {"prompt": [1], "stop_token_ids": 5}, "stop_token_ids", "list"),
    ("/v1/completions", {"prompt": [1], "n": 2}, "n", "not supported"),
    ("/v1/completions", {"prompt": [1], "stop": ["\n"]}, "stop", "stop_token_ids"),
    ("/v1/completions", {"prompt": [1], "logprobs": 5}, "logprobs", "not supported"),
    ("/v1/chat/completions", {"max_tokens": 3}, "messages", "non-empty list"),
    ("/v1/chat/completions", {"messages": []}, "messages", "empty list"),
    ("/v1/chat/completions", {"messages": ["hi"]}, "messages[0]", "object"),
    ("/v1/chat/completions", {"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role", "robot"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 7}]}, "messages[0].content", "string"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x" * MAX_LEN}]}, "messages", "context length"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": MAX_LEN},
     "max_completion_tokens", "at most"),
]


@pytest.mark.parametrize("path,body,param,word", BAD_REQUESTS, ids=[f"{b[2]}-{i}" for i, b in enumerate(BAD_REQUESTS)])
def test_bad_request_names_the_field(client, path, body, param, word):
    r = client.post(path, json=body)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert word in error["message"], error["message"]


def test_malformed_json_says_where(client):
    r = client.post("/v1/completions", content=b'{"prompt": [1, 2,]}', headers={"content-type": "application/json"})
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_json" and "line 1, column" in error["message"]
    r = client.post("/v1/completions", content=b"[1, 2]")
    assert r.status_code == 400 and "JSON object" in r.json()["error"]["message"]


def test_wrong_model_and_unknown_path(client):
    r = client.post("/v1/completions", json={"prompt": [1], "model": "gpt-9"})
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"
    r = client.get("/v1/nothing")
    assert r.status_code == 404 and "error" in r.json()


def test_bad_requests_are_counted_and_harm_nothing(client):
    for _ in range(3):
        client.post("/v1/completions", json={"prompt": "x", "max_tokens": -1})
    assert client.post("/v1/completions", json={"prompt": [1], "max_tokens": 2}).status_code == 200
    assert 'bench_requests_total{outcome="invalid"} 3.0' in client.get("/metrics").text


@pytest.fixture
def failing_server():
    with start_server(FailingEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, step_time_s=0.002)) as srv:
        yield srv


def test_engine_failure_is_500_for_that_request_only(failing_server):
    url = f"{failing_server.url}/v1/completions"
    results = {}

    def call(name, prompt, stream=False):
        results[name] = httpx.post(url, json={"prompt": prompt, "max_tokens": 20, "stream": stream}, timeout=20)

    threads = [threading.Thread(target=call, args=(f"ok{i}", [1, i])) for i in range(4)]
    threads += [
        threading.Thread(target=call, args=("first", [FAIL_FIRST, 1])),
        threading.Thread(target=call, args=("first-stream", [FAIL_FIRST, 2], True)),
        threading.Thread(target=call, args=("later", [FAIL_LATER, 1])),
        threading.Thread(target=call, args=("refused", [REFUSE_ADD, 1])),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        assert results[f"ok{i}"].status_code == 200
        assert results[f"ok{i}"].json()["usage"]["completion_tokens"] == 20
    for name in ("first", "first-stream", "later", "refused"):
        r = results[name]
        assert r.status_code == 500, (name, r.text)
        assert r.json()["error"]["type"] == "server_error"
    assert "before the first token" in results["first"].json()["error"]["message"]
    assert "cannot take this request" in results["refused"].json()["error"]["message"]


def test_failure_mid_stream_is_an_error_event(failing_server):
    r = httpx.post(f"{failing_server.url}/v1/completions", json={"prompt": [FAIL_LATER], "max_tokens": 20, "stream": True})
    assert r.status_code == 200  # headers went out with the first token
    data = [b[len("data: "):] for b in r.text.split("\n\n") if b.strip()]
    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    assert [len(c["choices"][0]["token_ids"]) for c in chunks[:2]] == [1, 1]
    assert chunks[-1]["error"]["type"] == "server_error" and "after two tokens" in chunks[-1]["error"]["message"]


def test_broken_engine_fails_in_flight_requests_and_refuses_new_ones():
    engine = BrokenStepEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, step_time_s=0.01)
    with start_server(engine) as srv:
        url = f"{srv.url}/v1/completions"
        result = {}
        t = threading.Thread(target=lambda: result.setdefault("r", httpx.post(url, json={"prompt": [1], "max_tokens": 500}, timeout=20)))
        t.start()
        time.sleep(0.2)
        engine.broken = True
        t.join(timeout=20)
        assert result["r"].status_code == 500 and "device lost" in result["r"].json()["error"]["message"]
        r = httpx.post(url, json={"prompt": [1], "max_tokens": 2})
        assert r.status_code == 503 and r.json()["error"]["code"] == "engine_down"
        health = httpx.get(f"{srv.url}/health")
        assert health.status_code == 503 and "device lost" in health.json()["error"]
