"""One run end to end (bench.session.run_one), on the mock and on the real tiny model."""

from __future__ import annotations

import pytest

import bench.session
from bench.session import RunOptions, run_one
from engines.api import model_limits
from engines.mock import MockEngine
from engines.request import ConfigError
from workloads import WorkloadError

TINY = "quick:num_requests=4,prompt=fixed(16),output=fixed(4)"


def test_model_limits_from_describe():
    assert model_limits(MockEngine(vocab_size=500, max_model_len=64).describe()) == (500, 64)
    info = {"name": "x", "options": {"max_model_len": 1024}, "model": {"config": {"vocab_size": 2048, "max_position_embeddings": 4096}}}
    assert model_limits(info) == (2048, 1024)  # the engine's own limit wins over the model's
    info["options"] = {}
    assert model_limits(info) == (2048, 4096)
    with pytest.raises(ConfigError, match="engine 'peer'.*no max_model_len.*--engine-opt max_model_len"):
        model_limits({"name": "peer", "options": {"vocab_size": 10}, "model": None})


def test_workload_is_fitted_to_the_engine_and_options_reach_it(tmp_path):
    run = run_one("mock:vocab_size=300", "tiny", "quick:num_requests=5,output=fixed(3)", tmp_path / "r",
                  engine_options={"max_batch": 2, "vocab_size": 999}, progress=False)
    assert run.manifest["engine"]["options"]["vocab_size"] == 300  # the spec's own option wins
    assert run.manifest["engine"]["options"]["max_batch"] == 2
    assert max(max(ids) for ids in run.requests["output_token_ids"]) < 300
    assert run.summary["roofline"] is None  # no model: no bound
    assert run.manifest["run"]["status"] == "complete" and run.manifest["run"]["warmup_s"] > 0


def test_engine_is_closed_when_the_workload_cannot_be_built(tmp_path, monkeypatch):
    closed = []

    class Tracked(MockEngine):
        def close(self):
            closed.append(True)

    monkeypatch.setattr(bench.session, "create_engine", lambda name, model, **kw: Tracked())
    with pytest.raises(WorkloadError, match="128"):
        run_one("mock", "tiny", "anchor-a", tmp_path / "r", progress=False)  # needs a 128k vocabulary
    assert closed == [True] and not (tmp_path / "r").exists()


def test_timeouts_from_options(tmp_path):
    opts = RunOptions(timeout_s=0.05, progress=False, warmup_requests=0)
    run = run_one("mock:step_time_s=0.01", "tiny", "quick:num_requests=3,output=fixed(50)", tmp_path / "r", **opts.as_kwargs())
    assert run.summary["counts"]["timeout"] == 3
    assert set(run.requests["status"]) == {"timeout"}


def test_real_tiny_engine_with_roofline(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # ceilings measured here, not in ~
    run = run_one("paged:block_size=8", "tiny", TINY, tmp_path / "r", progress=False)
    assert run.manifest["model"]["device"] == "cpu" and run.manifest["engine"]["options"]["block_size"] == 8
    assert run.summary["counts"]["ok"] == 4 and run.summary["output_tokens"] == 16
    roof = run.summary["roofline"]
    assert roof["ceilings"]["source"] == "measured-cpu" and 0 < roof["efficiency"] < 1
    assert (tmp_path / "cache" / "llm-batching-bench" / "ceilings.json").exists()
    own = roof["steps_bound"]  # the bound of the engine's own steps, from steps.parquet
    assert own["steps"] == run.summary["engine"]["steps"] and own["t_min_s"] > 0
    assert own["efficiency"] * own["schedule_efficiency"] == pytest.approx(roof["efficiency"])
    # on a CPU: no device times, so phases timed from the host, adding up to the steps' bound
    assert own["device_s"] is None and own["time_source"] == "host"
    assert sum(p["steps"] for p in own["phases"]) == own["steps"]
    assert sum(p["bound_s"] for p in own["phases"]) == pytest.approx(own["t_min_s"])
    # no schedule beats the workload's bound, but for its one token a request too many
    from bench.roofline import ModelShape
    slack = 4 * 2 * ModelShape.from_config(run.manifest["model"]["config"]).matmul_params
    assert own["t_min_s"] >= roof["t_min_s"] - slack / roof["ceilings"]["flops_per_s"]
    computed = run.steps[["prefill_tokens", "decode_tokens"]].sum(axis=1) > 0
    assert run.summary["engine"]["steps"] == computed.sum() > 0
    # async scheduling: the last step only collects the tokens of the one before it
    assert len(run.steps) == computed.sum() + 1 and not computed.iloc[-1]
    # no CUDA graphs on a CPU: every forward eager, the collecting step neither
    assert run.steps["cuda_graph"][computed].eq(False).all() and run.steps["cuda_graph"].iloc[-1] is None
    assert (run.summary["engine"]["cuda_graph_steps"], run.summary["engine"]["eager_steps"]) == (0, computed.sum())


def test_open_loop_runs_have_no_roofline(tmp_path):
    run = run_one("paged", "tiny", TINY + ",arrival=poisson(100)", tmp_path / "r", progress=False)
    assert run.manifest["run"]["mode"] == "open" and run.summary["roofline"] is None
