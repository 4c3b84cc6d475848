"""The load generator's HTTP client on its own (gevent, in this process's main thread):
chunk timing, a kept-alive connection the server closed, timeouts and refusals."""

from __future__ import annotations

import json
import socket
import time

import numpy as np
import pytest

from bench.load.stream_client import StreamClient
from bench.records import RequestRecord
from bench.serve import start_server
from engines.mock import MockEngine

pytestmark = pytest.mark.timeout(60)


def body(n_tokens: int) -> bytes:
    return json.dumps({"prompt": [3, 4], "max_tokens": n_tokens, "stream": True, "ignore_eos": True,
                       "stream_options": {"include_usage": True}}).encode()


def clock():
    return time.perf_counter_ns()


def send(client, n_tokens):
    record = RequestRecord("r", 0, 2, n_tokens)
    client.send(body(n_tokens), record, clock, keep_ids=True)
    return record


def test_every_token_is_a_timed_chunk_on_a_kept_alive_connection():
    # 10 ms a token; three requests on one connection (Nagle and delayed ACKs used to hold a
    # reused connection's chunks back and deliver them in one lump, all at one time)
    engine = MockEngine(vocab_size=2048, max_model_len=512, step_time_s=0.01)
    with start_server(engine) as srv:
        client = StreamClient(srv.url, timeout_s=10)
        records = [send(client, 8) for _ in range(3)]
        client.close()
    for record in records:
        assert record.status == "ok", record.error
        assert record.chunk_tokens == [1] * 8 and record.output_tokens == 8
        gaps = np.diff(record.chunk_times_ns) / 1e6
        assert np.median(gaps) > 5, gaps  # each token timed on its own arrival
        assert record.send_ns < record.first_token_ns == record.chunk_times_ns[0]
        assert record.finish_ns == record.chunk_times_ns[-1]


def test_a_connection_closed_while_idle_is_reopened_once():
    engine = MockEngine(vocab_size=2048, max_model_len=512)
    srv = start_server(engine)
    port = srv.port
    client = StreamClient(srv.url, timeout_s=10)
    client.open()  # a kept-alive connection...
    srv.stop()  # ...that the server then closes
    with start_server(MockEngine(vocab_size=2048, max_model_len=512), port=port):
        record = send(client, 3)
    client.close()
    assert record.status == "ok", record.error
    assert record.output_tokens == 3


def test_timeout_and_refused_connection_end_the_request_only():
    engine = MockEngine(vocab_size=2048, max_model_len=512, step_time_s=0.05)
    with start_server(engine) as srv:
        client = StreamClient(srv.url, timeout_s=0.3)
        slow = send(client, 100)
        assert slow.status == "timeout" and 0 < slow.output_tokens < 100
        client.timeout_s = 10
        client._http = client._connect()
        assert send(client, 2).status == "ok"  # the client goes on after a timeout
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    refused = send(StreamClient(f"http://127.0.0.1:{dead}", timeout_s=2), 2)
    assert refused.status == "error" and "refused" in refused.error.lower()
