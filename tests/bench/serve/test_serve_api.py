"""The OpenAI-compatible API over real HTTP: completions and chat, streamed and whole."""

from __future__ import annotations

import json

import httpx
import pytest

from bench.serve import ServeOptions, start_server
from bench.serve.tokenizer import BYTE_OFFSET
from engines.mock import MockEngine
from engines.request import Request
from tests.bench.serve.serve_doubles import MAX_LEN, VOCAB

pytestmark = pytest.mark.timeout(60)


def expected_tokens(prompt_ids, n, stop=()) -> list[int]:
    """What the mock engine generates in-process for this request."""
    engine = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN)
    engine.add_request(Request("x", tuple(prompt_ids), n, stop_token_ids=tuple(stop)))
    out = []
    while engine.has_unfinished():
        for e in engine.step().events:
            out.extend(e.token_ids)
    return out


def sse_events(text: str) -> list:
    """The data of every server-sent event; the stream must end with [DONE]."""
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert all(b.startswith("data: ") for b in blocks), blocks
    data = [b[len("data: "):] for b in blocks]
    assert data[-1] == "[DONE]"
    assert "[DONE]" not in data[:-1]
    return [json.loads(d) for d in data[:-1]]


def test_completion_whole_with_token_ids(client):
    r = client.post("/v1/completions", json={"model": "mock-model", "prompt": [5, 6, 7], "max_tokens": 6, "temperature": 0})
    assert r.status_code == 200
    body = r.json()
    choice = body["choices"][0]
    assert body["object"] == "text_completion" and body["model"] == "mock-model"
    assert choice["token_ids"] == expected_tokens([5, 6, 7], 6)
    assert choice["finish_reason"] == "length"
    assert body["usage"] == {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}


def test_text_prompt_goes_through_the_byte_tokenizer(client):
    text = "héllo"
    r = client.post("/v1/completions", json={"prompt": text, "max_tokens": 2})
    ids = [b + BYTE_OFFSET for b in text.encode()]
    assert r.status_code == 200
    assert r.json()["usage"]["prompt_tokens"] == len(ids) == 6
    assert r.json()["choices"][0]["token_ids"] == expected_tokens(ids, 2)


def test_stream_is_one_event_per_token_with_usage_last(client):
    r = client.post("/v1/completions", json={"prompt": [5, 6, 7], "max_tokens": 5, "stream": True})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert [e["choices"][0]["token_ids"] for e in events] == [[t] for t in expected_tokens([5, 6, 7], 5)]
    assert [e["choices"][0]["finish_reason"] for e in events] == [None] * 4 + ["length"]
    assert "usage" not in events[0]
    assert events[-1]["usage"] == {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
    assert len({e["id"] for e in events}) == 1


def test_stream_include_usage_adds_openai_usage_chunk(client):
    body = {"prompt": [9, 9], "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}}
    events = sse_events(client.post("/v1/completions", json=body).text)
    assert len(events) == 4
    assert all("usage" not in e for e in events[:3])
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 3


def test_stream_continuous_usage_is_in_every_chunk(client):
    options = {"include_usage": True, "continuous_usage_stats": True}
    events = sse_events(client.post("/v1/completions", json={"prompt": [9], "max_tokens": 4, "stream": True,
                                                           "stream_options": options}).text)
    assert [e["usage"]["completion_tokens"] for e in events] == [1, 2, 3, 4, 4]


def test_stop_token_ends_early_with_finish_reason_stop(client):
    tokens = expected_tokens([5, 6, 7], 10)
    stop = tokens[2]
    r = client.post("/v1/completions", json={"prompt": [5, 6, 7], "max_tokens": 10, "stop_token_ids": [stop]})
    choice = r.json()["choices"][0]
    assert choice["token_ids"] == tokens[:3]
    assert choice["finish_reason"] == "stop"


def test_chat_stream_and_whole(client):
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    whole = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 3})
    assert whole.status_code == 200
    body = whole.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["role"] == "assistant"
    prompt_text = "<|system|>\nbe brief\n<|user|>\nhi\n<|assistant|>\n"
    assert body["usage"]["prompt_tokens"] == len(prompt_text.encode())
    events = sse_events(client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 3, "stream": True}).text)
    assert [e["object"] for e in events] == ["chat.completion.chunk"] * 3
    assert events[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "role" not in events[1]["choices"][0]["delta"]
    streamed = "".join(e["choices"][0]["delta"]["content"] for e in events)
    assert streamed == body["choices"][0]["message"]["content"]  # same prompt, same seedless mock tokens


def test_byte_tokens_decode_back_to_text():
    # an engine that echoes the prompt shows the decoder: "é" is two byte tokens, one char
    class Echo(MockEngine):
        def _token(self, request, index):
            return request.prompt_ids[index]

    with start_server(Echo(vocab_size=VOCAB, max_model_len=MAX_LEN)) as srv:
        events = sse_events(httpx.post(f"{srv.url}/v1/completions", json={"prompt": "aé!", "max_tokens": 4, "stream": True}).text)
    assert [e["choices"][0]["text"] for e in events] == ["a", "", "é", "!"]


def test_models_health_and_metrics(client):
    models = client.get("/v1/models").json()
    card = models["data"][0]
    assert card["id"] == "mock-model" and card["max_model_len"] == MAX_LEN and card["vocab_size"] == VOCAB
    assert client.get("/health").json()["status"] == "ok"
    client.post("/v1/completions", json={"prompt": [1, 2], "max_tokens": 3})
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    for name in (
        "bench_requests_running", "bench_requests_waiting", "bench_kv_tokens_used", "bench_kv_usage_ratio",
        "bench_generation_tokens_per_second", "bench_preemptions_total",
        "bench_time_to_first_token_seconds_bucket", "bench_time_per_output_token_seconds_bucket",
    ):
        assert f"\n{name}" in text, name
    assert 'bench_requests_total{outcome="ok"} 1.0' in text
    assert "bench_generation_tokens_total 3.0" in text
    assert "bench_time_to_first_token_seconds_count 1.0" in text


def test_two_servers_in_one_process_keep_separate_state():
    a = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN)
    b = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN)
    with start_server(a, options=ServeOptions(model_name="a")) as sa, start_server(b, options=ServeOptions(model_name="b")) as sb:
        assert httpx.post(f"{sa.url}/v1/completions", json={"prompt": [1], "max_tokens": 2}).status_code == 200
        assert httpx.get(f"{sb.url}/v1/models").json()["data"][0]["id"] == "b"
        assert 'bench_requests_total{outcome="ok"} 1.0' in httpx.get(f"{sa.url}/metrics").text
        assert 'bench_requests_total{outcome="ok"} 0.0' in httpx.get(f"{sb.url}/metrics").text
