from __future__ import annotations

import json
import time

import numpy as np
import pytest

from workloads.build import build_workload
from workloads.presets import DEFAULT_PRESET, PRESETS, list_presets

TINY = dict(vocab_size=2048, max_model_len=2048)  # the `tiny` model


def test_list_presets_names_every_preset_with_one_line():
    presets = list_presets()
    assert set(presets) == {"quick", "anchor-a", "long-tail", "azure-code", "burstgpt", "mooncake", "sharegpt"}
    assert DEFAULT_PRESET == "quick"
    assert all(desc and "\n" not in desc for desc in presets.values())


@pytest.mark.parametrize("name", [n for n in PRESETS if n != "anchor-a"])
def test_preset_builds_quickly_and_fits_the_tiny_model(name):
    start = time.perf_counter()
    wl = build_workload(name, **TINY)
    assert time.perf_counter() - start < 2.0
    assert wl.name == name and 64 <= len(wl.requests) <= 256
    for r in wl.requests:
        r.validate(2048, 2048)  # raises if a request could not be served
    json.dumps(wl.describe())


def barrier_waste(outputs: np.ndarray, batch: int) -> float:
    """Share of decode slots a static batch of `batch` leaves idle while its longest runs."""
    batches = [outputs[i : i + batch] for i in range(0, len(outputs), batch)]
    return 1 - outputs.sum() / sum(len(b) * b.max() for b in batches)


def test_long_tail_makes_the_batch_barrier_waste_most_slots():
    outputs = np.array([r.max_new_tokens for r in build_workload("long-tail", **TINY).requests])
    long = outputs >= 192
    assert 0.05 < long.mean() < 0.2 and outputs[~long].max() <= 32
    quick = np.array([r.max_new_tokens for r in build_workload("quick", **TINY).requests])
    for batch in (8, 16, 32):
        assert barrier_waste(outputs, batch) > 0.75 > 0.5 > barrier_waste(quick, batch)


def span(wl) -> float:
    return wl.requests[-1].arrival_s - wl.requests[0].arrival_s


@pytest.mark.parametrize(
    "name, low_s, high_s", [("azure-code", 40, 60), ("burstgpt", 50, 70), ("mooncake", 30, 45)]
)
def test_trace_presets_replay_open_loop_over_the_described_span(name, low_s, high_s):
    wl = build_workload(name, **TINY)
    assert wl.mode == "open" and low_s < span(wl) < high_s
    assert wl.notes  # each trace preset changes its trace (limit, speedup, scaling) and says so


def test_mooncake_preset_keeps_prefix_sharing():
    wl = build_workload("mooncake", **TINY)
    first_blocks = [r.prompt_ids[:32] for r in wl.requests if len(r.prompt_ids) >= 32]
    assert len(set(first_blocks)) < len(first_blocks)  # some requests share their first block


def test_sharegpt_preset_is_poisson_over_fitting_rows():
    wl = build_workload("sharegpt", **TINY)
    gaps = np.diff([r.arrival_s for r in wl.requests])
    assert wl.mode == "open" and 0.3 < gaps.mean() < 0.8  # poisson(2): mean gap 0.5 s
    assert "that fit max_model_len=2048" in wl.notes[0]
    outputs = [r.max_new_tokens for r in wl.requests]
    assert np.mean(outputs) > 150  # real conversation outputs, not clipped to nothing
