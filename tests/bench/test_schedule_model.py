"""benchmarks/schedule_model.py: the step cost fit, and the model-free replay of the engines'
schedules, checked against runs measured on the H200 (the README quotes its predictions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.schedule_model import fit, main, options_for, replay
from workloads.build import build_workload

RUNS = Path(__file__).parents[2] / "examples/h200-anchor-a/runs"
TABLE = "lof-table_llama-8b_{}__anchor-a"
LOF = "paged_queue_order=lof_admission=reserve_token_budge-df28db62"


def _steps(n: int, rng) -> pd.DataFrame:
    tokens = rng.integers(1, 3000, n)
    prefill = (tokens * rng.random(n)).astype(int)
    return pd.DataFrame(dict(
        prefill_tokens=prefill, decode_tokens=tokens - prefill, padded_tokens=0, wasted_decode_tokens=0,
        context_tokens=rng.integers(0, 200_000, n), num_seqs=rng.integers(1, 256, n),
        attention_pairs=0,
    ))


def test_the_fit_recovers_a_known_cost():
    rng = np.random.default_rng(0)
    steps = _steps(400, rng)
    steps["attention_pairs"] = steps["context_tokens"] + steps["num_seqs"] + rng.integers(0, 3_000_000, 400)
    pairs = steps["attention_pairs"] - steps["context_tokens"] - steps["num_seqs"]
    ms = 1.5 + 0.022 * np.maximum(steps["prefill_tokens"] + steps["decode_tokens"], 161) \
        + 38e-6 * steps["context_tokens"] + 1.3e-6 * pairs
    steps["device_ns"] = ms * 1e6
    cost = fit(steps)
    assert cost.m0 == 161
    assert (cost.a, cost.b, cost.c, cost.d) == pytest.approx((1.5, 0.022, 38e-6, 1.3e-6), rel=1e-6)
    assert cost.rel_error < 1e-9


def test_a_run_without_device_times_is_refused():
    steps = _steps(20, np.random.default_rng(1))
    steps["device_ns"] = None
    with pytest.raises(SystemExit, match="0 steps with a device time"):
        fit(steps)


@pytest.fixture(scope="module")
def measured():
    run = RUNS / TABLE.format("paged")
    manifest = json.loads((run / "manifest.json").read_text())
    options = manifest["engine"]["options"]
    cost = fit(pd.read_parquet(run / "steps.parquet"))
    workload = build_workload("anchor-a", vocab_size=manifest["model"]["config"]["vocab_size"],
                              max_model_len=options["max_model_len"])
    return options, cost, workload.requests


@pytest.mark.parametrize("engine, spec_options, run", [
    ("naive", {}, TABLE.format("naive")),
    ("static", {}, TABLE.format("static")),
    ("continuous", {}, TABLE.format("continuous")),
    ("paged", {}, TABLE.format("paged")),
    ("paged", dict(queue_order="lof", admission="reserve", token_budget=512), TABLE.format(LOF)),
    # measured on another H200 half an hour later
    ("static", dict(queue_order="lof"), "lof-confirm_static_queue_order=lof__anchor-a"),
    ("continuous", dict(queue_order="lof"), "lof-confirm_continuous_queue_order=lof__anchor-a"),
])
def test_the_replay_chooses_the_steps_the_engines_chose_on_the_gpu(measured, engine, spec_options, run):
    """Same step count and preemptions as the measured run of that configuration: the replay
    runs the real policy, so the schedule it prices is the engine's own."""
    options, cost, requests = measured
    summary = json.loads((RUNS / run / "summary.json").read_text())
    p = replay(engine, options_for(options, spec_options, options["kv_bytes_per_token"]), requests, 128256, cost)
    assert p.steps == summary["engine"]["steps"]
    assert p.preemptions == summary["engine"]["preemptions"] == 0
    assert p.output_tokens == summary["output_tokens"] == 65_940
    if run.startswith("lof-table_llama-8b_paged"):  # the machine and step shapes the cost was fitted to
        assert p.output_tok_per_s == pytest.approx(summary["output_tok_per_s"], rel=0.02)
    if run.startswith("lof-table") and engine != "naive":  # the latencies too, on the fitted machine
        for name, values in (("ttft_ms", p.ttft_ms), ("tpot_ms", p.tpot_ms)):
            for q in (50, 99):
                assert np.percentile(values, q) == pytest.approx(summary[name][f"p{q}"], rel=0.07), (name, q)


def test_main_prints_and_writes_the_rows(tmp_path, capsys):
    out = tmp_path / "rows.json"
    assert main([str(RUNS / TABLE.format("paged")), "--engines", "paged", "paged:queue_order=lof",
                 "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "step cost fitted to" in text and "paged:queue_order=lof" in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["steps"] for r in rows] == [526, 512]


def test_a_bad_engine_option_is_named(tmp_path):
    from engines.request import ConfigError

    with pytest.raises(ConfigError, match="option queue_order must be one of fcfs, lof, got 'sjf'"):
        main([str(RUNS / TABLE.format("paged")), "--engines", "paged:queue_order=sjf"])


def test_an_open_loop_replay_waits_for_arrivals(measured):
    """Requests join when the predicted clock reaches their arrival: at 2 requests/s the
    run cannot end before its last arrival, and an offline replay of the same requests
    (all at t = 0) is much shorter."""
    options, cost, _ = measured
    workload = build_workload("synthetic:num_requests=20,prompt=uniform(64,256),output=uniform(16,64),"
                              "arrival=poisson(2)", vocab_size=128256, max_model_len=1536)
    assert workload.mode == "open"
    resolved = options_for(options, {}, options["kv_bytes_per_token"])
    online = replay("paged", resolved, workload.requests, 128256, cost, offline=False)
    offline = replay("paged", resolved, workload.requests, 128256, cost, offline=True)
    last = max(r.arrival_s for r in workload.requests)
    assert last > 3 and online.time_s >= last
    assert offline.time_s < last / 3
    assert online.output_tokens == offline.output_tokens == sum(r.max_new_tokens for r in workload.requests)


def test_a_peer_run_or_an_incomplete_folder_is_refused_by_name(tmp_path):
    peer = RUNS / "lof-table_llama-8b_hf-cb__anchor-a"
    with pytest.raises(SystemExit, match="missing steps.parquet"):
        main([str(peer)])
    for name in ("manifest.json", "summary.json"):
        (tmp_path / name).write_text((peer / name).read_text())
    pd.DataFrame({"step": [0]}).to_parquet(tmp_path / "steps.parquet")
    with pytest.raises(SystemExit, match="engine 'hf-cb' is a peer engine; the schedule model needs a run of an in-repo"):
        main([str(tmp_path)])
