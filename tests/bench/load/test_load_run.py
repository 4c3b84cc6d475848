"""`bench load` against a real server on 127.0.0.1: locust in child processes, every chunk
timed, the same result directory as an in-process run, with its fidelity check."""

from __future__ import annotations

import numpy as np
import pytest

from bench.cli import main as bench_main
from bench.load import LoadConfig, run_load
from bench.results import load_run
from bench.serve import ServeOptions, start_server
from engines.mock import MockEngine
from engines.request import ConfigError, Request

pytestmark = pytest.mark.timeout(180)
VOCAB, MAX_LEN = 2048, 512


def mock_tokens(prompt_ids, n) -> list[int]:
    engine = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN)
    engine.add_request(Request("x", tuple(prompt_ids), n))
    out = []
    while engine.has_unfinished():
        for e in engine.step().events:
            out.extend(e.token_ids)
    return out


def peak_in_flight(requests) -> int:
    events = sorted([(s, 1) for s in requests.send_ns] + [(f, -1) for f in requests.finish_ns], key=lambda e: (e[0], e[1]))
    return int(np.max(np.cumsum([d for _, d in events])))


@pytest.fixture
def server():
    with start_server(MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, step_time_s=0.002)) as srv:
        yield srv


def test_open_loop_load_writes_a_full_result(server, tmp_path):
    spec = "synthetic:num_requests=30,prompt=fixed(16),output=fixed(6),arrival=constant(40),seed=3"
    result = run_load(LoadConfig(url=server.url, workload=spec), tmp_path / "run")
    again = load_run(tmp_path / "run")
    assert again.summary["counts"] == result.summary["counts"]
    assert result.summary["counts"]["ok"] == 30 and result.summary["counts"]["total"] == 30
    req = result.requests
    assert (req.output_tokens == 6).all()
    assert all(list(c) == [1] * 6 for c in req.chunk_tokens)  # one SSE event per token, each timed
    assert all(np.all(np.diff(list(t)) >= 0) for t in req.chunk_times_ns)
    assert (req.send_ns >= req.arrival_ns).all() and (req.first_token_ns > req.send_ns).all()
    # the tokens are the engine's, read back from the stream
    from workloads import build_workload

    workload = build_workload(spec, vocab_size=VOCAB, max_model_len=MAX_LEN)
    for r, row in zip(workload.requests, req.itertuples()):
        assert row.request_id == r.id and list(row.output_token_ids) == mock_tokens(r.prompt_ids, 6)
    load = result.summary["load"]
    assert load["mode"] == "open" and load["requests_sent"] == 30
    assert load["offered_rate_req_per_s"] == pytest.approx(40.0)
    assert load["achieved_rate_req_per_s"] == pytest.approx(40.0, rel=0.15)
    assert load["send_lag_ms"]["p99"] < 50  # generous: CI machines are noisy; the benchmark measures it
    assert load["client_processes"][0]["role"] == "local"
    assert isinstance(load["generator_limited"], bool)
    assert result.manifest["load"]["url"] == server.url
    assert result.manifest["engine"]["name"] == "openai" and result.label == "http:mock"
    assert result.summary["ttft_ms"]["n"] == 30


def test_closed_loop_never_exceeds_its_concurrency(server, tmp_path):
    spec = "synthetic:num_requests=12,prompt=fixed(8),output=fixed(10)"
    result = run_load(LoadConfig(url=server.url, workload=spec, concurrency=3), tmp_path / "closed")
    req = result.requests
    assert result.summary["counts"]["ok"] == 12
    assert (req.arrival_ns == req.send_ns).all()
    assert peak_in_flight(req) == 3
    assert result.summary["load"]["mode"] == "closed" and result.summary["load"]["send_lag_ms"] is None


def test_local_workers_share_the_load(server, tmp_path):
    spec = "synthetic:num_requests=20,prompt=fixed(8),output=fixed(4),arrival=constant(50)"
    result = run_load(LoadConfig(url=server.url, workload=spec, workers=2), tmp_path / "workers")
    assert result.summary["counts"]["ok"] == 20
    assert sorted(result.requests.request_id) == [f"r{i:05d}" for i in range(20)]
    processes = result.summary["load"]["client_processes"]
    assert [p["role"] for p in processes] == ["worker 0", "worker 1"]
    assert result.summary["load"]["achieved_rate_req_per_s"] == pytest.approx(50.0, rel=0.2)


def test_overload_through_bench_load_counts_429s_and_loses_nothing(tmp_path, capsys):
    engine = MockEngine(vocab_size=VOCAB, max_model_len=MAX_LEN, max_batch=1, step_time_s=0.01)
    with start_server(engine, options=ServeOptions(max_waiting=2)) as srv:
        out = tmp_path / "overload"
        code = bench_main(["load", "--url", srv.url, "--workload", "synthetic:num_requests=12,prompt=fixed(8),output=fixed(3)",
                           "--warmup-requests", "0", "--out", str(out)])
        assert code == 0
        result = load_run(out)
        counts = result.summary["counts"]
        assert counts["rejected"] > 0 and counts["ok"] > 0
        assert counts["ok"] + counts["rejected"] == 12 and counts["error"] == 0
        ok = result.requests[result.requests.status == "ok"]
        assert (ok.output_tokens == 3).all()
        rejected = result.requests[result.requests.status == "rejected"]
        assert rejected.error.str.startswith("HTTP 429").all()
        assert srv.state.engine_thread.error is None
        printed = capsys.readouterr().out
        assert "load: 12/12 sent" in printed and f"result: {out}" in printed


def test_non_loopback_url_is_refused(tmp_path, capsys):
    with pytest.raises(ConfigError, match="not a loopback address"):
        run_load(LoadConfig(url="http://10.255.255.1:8000"), tmp_path / "x")
    assert bench_main(["load", "--url", "http://10.255.255.1:8000", "--out", str(tmp_path / "y")]) == 2
    assert "--allow-remote" in capsys.readouterr().err
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
