"""The bound of an engine's own steps: each step bounded alone, worked out by hand."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.roofline import STEPS_BOUND_COLUMNS, Ceilings, ModelShape, steps_bound, with_efficiency

# layer: attention 2*2 + 2*(2*2) + 2*2 = 16, MLP 3*2*2 = 12, norms 2*2 = 4 -> 32;
# non-embedding 32 + final norm 2 = 34; LM head 10*2 = 20; K/V 2*1*1*2 = 4 elements = 8 bytes
SHAPE = ModelShape(num_layers=1, hidden_size=2, num_heads=1, num_kv_heads=1, head_dim=2,
                   intermediate_size=2, vocab_size=10)
CEILINGS = Ceilings(bw_bytes_per_s=1.0, flops_per_s=2.0, source="test")


def frame(*steps: dict) -> pd.DataFrame:
    rows = [{c: 0 for c in STEPS_BOUND_COLUMNS} | s for s in steps]
    return pd.DataFrame(rows, columns=list(STEPS_BOUND_COLUMNS))


PROMPT = dict(prefill_tokens=3, sampled_tokens=1, attention_pairs=6)
# flops 2*34*3 + 2*20*1 + 4*1*1*2*6 = 204 + 40 + 48 = 292 -> 146 s at 2 FLOP/s
# bytes 2*(34 + 20) + 8*(0 + 3) = 132 -> 132 s at 1 B/s: compute-bound, 146 s
DECODE = dict(decode_tokens=2, sampled_tokens=2, context_tokens=10, attention_pairs=22)
# flops 2*34*2 + 2*20*2 + 8*22 = 392 -> 196 s; bytes 108 + 8*(10 + 2) = 204 s: memory-bound
CHUNK = dict(prefill_tokens=4, context_tokens=3, attention_pairs=22)
# samples nothing, so no LM head: flops 2*34*4 + 8*22 = 448 -> 224 s; bytes 2*34 + 8*7 = 124 s


def test_each_step_bounded_alone():
    bound = steps_bound(SHAPE, 2, frame(PROMPT, DECODE, CHUNK, {}), CEILINGS)
    assert bound == {"t_min_s": 146 + 204 + 224, "steps": 3, "compute_bound_steps": 2,
                     "flops": 292 + 392 + 448, "bytes": 132 + 204 + 124}


def test_wasted_rows_compute_and_sample():
    # naive's finished row: one position through the layers and the LM head, throwaway
    wasted = steps_bound(SHAPE, 2, frame(dict(wasted_decode_tokens=1, context_tokens=5, attention_pairs=6)),
                         CEILINGS)
    assert wasted["flops"] == 2 * 34 + 2 * 20 + 8 * 6
    assert wasted["bytes"] == 2 * (34 + 20) + 8 * (5 + 1)


def test_padded_positions_are_computed_positions():
    padded = steps_bound(SHAPE, 2, frame(dict(PROMPT, padded_tokens=2, attention_pairs=15)), CEILINGS)
    assert padded["flops"] == 2 * 34 * 5 + 2 * 20 + 8 * 15


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


@pytest.mark.parametrize("model", ["8b", "1b"])
def test_the_published_h200_runs_recompute_to_their_summaries(model):
    """The README's split of the roofline for paged on the H200 comes from these runs: the
    bound recomputed from their steps.parquet with today's code is the one they published."""
    from pathlib import Path

    from bench.results import load_run
    from bench.roofline import dtype_bytes, with_efficiency

    run = load_run(Path(__file__).parents[2] / f"examples/h200-anchor-a/runs/steps-bound_llama-{model}_paged__anchor-a")
    roof = run.summary["roofline"]
    ceilings = Ceilings(roof["ceilings"]["bw_bytes_per_s"], roof["ceilings"]["flops_per_s"], "run")
    shape = ModelShape.from_config(run.manifest["model"]["config"])
    own = steps_bound(shape, dtype_bytes(run.manifest["model"]["dtype"]), run.steps, ceilings)
    assert own["t_min_s"] == pytest.approx(roof["steps_bound"]["t_min_s"], rel=1e-12)
    assert own["steps"] == run.summary["engine"]["steps"] == 526
    redone = with_efficiency({**{k: roof[k] for k in ("t_min_s", "bound", "flops", "bytes", "ceilings")},
                              "steps_bound": own}, run.summary["duration_s"])
    assert redone["steps_bound"]["efficiency"] == pytest.approx(roof["steps_bound"]["efficiency"])
    assert redone["steps_bound"]["schedule_efficiency"] == pytest.approx(roof["steps_bound"]["schedule_efficiency"])
