"""The bound of an engine's own steps: each step bounded alone, worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.roofline import STEPS_BOUND_COLUMNS, Ceilings, ModelShape, steps_bound, with_efficiency

# layer: attention 2*2 + 2*(2*2) + 2*2 = 16, MLP 3*2*2 = 12, norms 2*2 = 4 -> 32;
# non-embedding 32 + final norm 2 = 34; LM head 10*2 = 20: 54 matrix parameters, 108 bytes;
# K/V 2*1*1*2 = 4 elements = 8 bytes a token
SHAPE = ModelShape(num_layers=1, hidden_size=2, num_heads=1, num_kv_heads=1, head_dim=2,
                   intermediate_size=2, vocab_size=10)
CEILINGS = Ceilings(bw_bytes_per_s=1.0, flops_per_s=2.0, source="test")


def frame(*steps: dict) -> pd.DataFrame:
    rows = [{c: 0 for c in STEPS_BOUND_COLUMNS} | s for s in steps]
    return pd.DataFrame(rows, columns=list(STEPS_BOUND_COLUMNS))


PROMPT = dict(prefill_tokens=3, attention_pairs=6)
# flops 2*54*3 + 4*1*1*2*6 = 324 + 48 = 372 -> 186 s at 2 FLOP/s
# bytes 108 + 8*(0 + 3) = 132 -> 132 s at 1 B/s: compute-bound, 186 s
DECODE = dict(decode_tokens=2, context_tokens=10, attention_pairs=22)
# flops 2*54*2 + 8*22 = 392 -> 196 s; bytes 108 + 8*(10 + 2) = 204 s: memory-bound, 204 s


def test_each_step_bounded_alone():
    bound = steps_bound(SHAPE, 2, frame(PROMPT, DECODE, {}), CEILINGS)  # {}: a step that only collects
    assert bound == {"t_min_s": 186 + 204, "steps": 2, "compute_bound_steps": 1,
                     "flops": 372 + 392, "bytes": 132 + 204, "device_s": None}  # no device times
    timed = frame(PROMPT, DECODE, {}).assign(device_ns=[300e9, 250e9, None])  # the collecting step has none
    assert steps_bound(SHAPE, 2, timed, CEILINGS)["device_s"] == 550


def test_pads_and_wasted_rows_are_computed_positions():
    padded = steps_bound(SHAPE, 2, frame(dict(PROMPT, padded_tokens=2, attention_pairs=15)), CEILINGS)
    assert padded["flops"] == 2 * 54 * 5 + 8 * 15 and padded["bytes"] == 108 + 8 * 5
    # naive's finished row: one position through the layers and the LM head, thrown away
    wasted = steps_bound(SHAPE, 2, frame(dict(wasted_decode_tokens=1, context_tokens=5, attention_pairs=6)),
                         CEILINGS)
    assert wasted["flops"] == 2 * 54 + 8 * 6 and wasted["bytes"] == 108 + 8 * (5 + 1)


def test_a_whole_workload_in_one_perfect_schedule_meets_the_workload_bound():
    """One request, prompt 3, output 3, run as a prompt step and two decode steps: the steps'
    bound counts what roofline_bound counts, less its one extra token of matrix work."""
    from bench.roofline import roofline_bound

    shape = ModelShape(num_layers=1, hidden_size=4, num_heads=2, num_kv_heads=1, head_dim=2,
                       intermediate_size=8, vocab_size=10)
    steps = frame(dict(prefill_tokens=3, attention_pairs=6),
                  dict(decode_tokens=1, context_tokens=3, attention_pairs=4),
                  dict(decode_tokens=1, context_tokens=4, attention_pairs=5))
    whole = roofline_bound(shape, 2, [3], [3], CEILINGS)
    own = steps_bound(shape, 2, steps, CEILINGS)
    assert own["flops"] == whole["flops"] - 2 * shape.matmul_params  # p + o - 1 positions, not p + o
    assert own["bytes"] == whole["bytes"]  # weights read 3 times = max(o); K/V read and written
    assert own["t_min_s"] >= (whole["flops"] - 2 * shape.matmul_params) / CEILINGS.flops_per_s


def test_steps_that_do_not_count_attention_have_no_bound():
    assert steps_bound(SHAPE, 2, frame(PROMPT).drop(columns="attention_pairs"), CEILINGS) is None
    older = frame(PROMPT).astype(object)
    older["context_tokens"] = None  # a file from before the column reads as None
    assert steps_bound(SHAPE, 2, older, CEILINGS) is None
    assert steps_bound(SHAPE, 2, frame(dict(PROMPT, attention_pairs=0)), CEILINGS) is None  # a mock engine
    assert steps_bound(SHAPE, 2, frame({}), CEILINGS) is None  # nothing computed


def test_efficiencies_multiply_to_the_roofline_efficiency():
    bound = {"t_min_s": 1.0, "bound": "compute", "flops": 1, "bytes": 1, "ceilings": {},
             "steps_bound": {"t_min_s": 2.5, "steps": 3, "compute_bound_steps": 1, "flops": 1, "bytes": 1}}
    out = with_efficiency(bound, 4.0)
    own = out["steps_bound"]
    assert (out["efficiency"], own["efficiency"], own["schedule_efficiency"]) == (0.25, 0.625, 0.4)
    assert own["efficiency"] * own["schedule_efficiency"] == pytest.approx(out["efficiency"])
    assert with_efficiency(bound, None)["steps_bound"]["efficiency"] is None
    assert "efficiency" not in bound["steps_bound"]  # not modified in place
    assert with_efficiency({**bound, "steps_bound": None}, 4.0)["steps_bound"] is None


@pytest.mark.parametrize("name, steps", [
    *[(f"{run}_paged__anchor-a", 526) for run in ("steps-bound_llama-8b", "steps-bound_llama-1b",
                                                  "steps-bound-repeat_llama-8b", "device-timed_llama-8b",
                                                  "device-timed_llama-1b")],
    # the latest table's two 8B paged rows: the defaults, and lof + reserve + budget 512
    ("lof-table_llama-8b_paged__anchor-a", 526),
    ("lof-table_llama-8b_paged_queue_order=lof_admission=reserve_token_budge-df28db62__anchor-a", 541),
])
def test_the_published_h200_runs_recompute_to_their_summaries(name, steps):
    """The README's split of the roofline for paged on the H200 comes from these runs: the
    bound recomputed from their steps.parquet with today's code is the one they published."""
    from pathlib import Path

    from bench.results import load_run
    from bench.roofline import dtype_bytes, with_efficiency

    run = load_run(Path(__file__).parents[2] / f"examples/h200-anchor-a/runs/{name}")
    roof = run.summary["roofline"]
    ceilings = Ceilings(roof["ceilings"]["bw_bytes_per_s"], roof["ceilings"]["flops_per_s"], "run")
    shape = ModelShape.from_config(run.manifest["model"]["config"])
    own = steps_bound(shape, dtype_bytes(run.manifest["model"]["dtype"]), run.steps, ceilings)
    assert own["t_min_s"] == pytest.approx(roof["steps_bound"]["t_min_s"], rel=1e-12)
    assert own["steps"] == run.summary["engine"]["steps"] == steps
    redone = with_efficiency({**{k: roof[k] for k in ("t_min_s", "bound", "flops", "bytes", "ceilings")},
                              "steps_bound": own}, run.summary["duration_s"])
    assert redone["steps_bound"]["efficiency"] == pytest.approx(roof["steps_bound"]["efficiency"])
    assert redone["steps_bound"]["schedule_efficiency"] == pytest.approx(roof["steps_bound"]["schedule_efficiency"])


def test_step_phases_add_up_to_the_run(tmp_path, capsys):
    """benchmarks/step_phases.py, as the README quotes it, on a run from before the device
    times: the phases cover every computing step once, their host-measured times add up to
    the run, their bounds to the run's steps' bound."""
    import json
    from pathlib import Path

    from benchmarks.step_phases import main

    run = Path(__file__).parents[2] / "examples/h200-anchor-a/runs/steps-bound_llama-8b_paged__anchor-a"
    assert main([str(run), "--json", str(tmp_path / "phases.json")]) == 0
    *phases, whole = json.loads((tmp_path / "phases.json").read_text())
    assert sum(p["steps"] for p in phases) == whole["steps"] == 526
    assert sum(p["time_s"] for p in phases) == pytest.approx(whole["time_s"], rel=0.01)
    assert sum(p["bound_s"] for p in phases) == pytest.approx(whole["bound_s"])
    prompt = phases[0]
    assert (prompt["phase"], prompt["steps"], prompt["positions"]) == ("prompt steps", 18, 140_434)
    assert {p["time_source"] for p in phases} == {"host"}
    assert "whole run (W)" in capsys.readouterr().out


def test_device_timed_phases_add_up_to_the_device_time():
    """With step timing, each phase's time is its steps' own device time: the phases add up
    to the time the device spent in steps, which the run's window W contains."""
    from pathlib import Path

    from bench.results import load_run

    run = load_run(Path(__file__).parents[2] / "examples/h200-anchor-a/runs/device-timed_llama-8b_paged__anchor-a")
    own = run.summary["roofline"]["steps_bound"]
    assert own["time_source"] == "device"
    assert sum(p["time_s"] for p in own["phases"]) == pytest.approx(own["device_s"])
    assert own["device_s"] <= run.summary["duration_s"]
    assert run.steps["device_ns"].notna().sum() == own["steps"] == 526


LOF_TABLE = "examples/h200-anchor-a/runs/lof-table_llama-8b_paged"


def test_the_published_lof_run_admitted_longest_first_and_never_preempted():
    """What the README says of the lof + reserve run, read from its own files: requests got
    their first token in order of their max_new_tokens, largest first (ranks agree almost
    perfectly; a chunked prompt of a later request can end before an earlier one's), no step
    preempted, and fewer requests ran at once than under on-demand admission."""
    from pathlib import Path

    from bench.results import load_run

    root = Path(__file__).parents[2]
    lof = load_run(root / f"{LOF_TABLE}_queue_order=lof_admission=reserve_token_budge-df28db62__anchor-a")
    fcfs = load_run(root / f"{LOF_TABLE}__anchor-a")
    assert lof.manifest["engine"]["options"]["queue_order"] == "lof"
    assert lof.manifest["engine"]["options"]["admission"] == "reserve"
    r = lof.requests
    rank_corr = r["max_new_tokens"].rank().corr(r["first_token_ns"].rank())
    assert rank_corr < -0.95
    assert fcfs.requests["max_new_tokens"].rank().corr(fcfs.requests["first_token_ns"].rank()) > -0.3
    assert lof.steps["preemptions"].sum() == 0
    assert (lof.summary["engine"]["running_peak"], fcfs.summary["engine"]["running_peak"]) == (186, 255)
