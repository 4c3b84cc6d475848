"""A run's phases: which steps fall in which, and whose time each step gets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from bench.metrics.phases import phase_breakdown, step_times_s
from bench.roofline import Ceilings, ModelShape, step_bounds, steps_bound

SHAPE = ModelShape(num_layers=1, hidden_size=2, num_heads=1, num_kv_heads=1, head_dim=2,
                   intermediate_size=2, vocab_size=10)
CEILINGS = Ceilings(bw_bytes_per_s=1.0, flops_per_s=2.0, source="test")


def steps(rows: list[tuple[int, int]], **columns) -> pd.DataFrame:
    """(prefill, decode) per step, one attention pair per position, contiguous host calls of
    1, 2, 3, ... ms."""
    ends = np.cumsum(np.arange(1, len(rows) + 1)) * 1_000_000
    frame = pd.DataFrame({
        "prefill_tokens": [p for p, _ in rows], "decode_tokens": [d for _, d in rows],
        "padded_tokens": 0, "wasted_decode_tokens": 0, "context_tokens": 0,
        "attention_pairs": [p + d for p, d in rows],
        "start_ns": np.append(0, ends[:-1]), "end_ns": ends,
    })
    return frame.assign(**columns)


RUN = [(300, 0), (100, 250), (0, 255), (0, 120), (0, 130), (0, 60), (0, 3), (0, 0)]


def test_steps_fall_in_one_phase_each():
    frame = steps(RUN)
    times, source = step_times_s(frame, on_gpu=False, async_scheduling=True)
    bounds = step_bounds(SHAPE, 2, frame, CEILINGS).seconds
    rows = phase_breakdown(frame, times, bounds)
    assert source == "host"
    assert [(r["phase"], r["steps"], r["positions"]) for r in rows] == [
        ("prompt steps", 2, 650), ("decode, 200+ requests", 1, 255), ("decode, 100-199", 2, 250),
        ("decode, 50-99", 1, 60), ("decode, 1-49", 1, 3)]  # the empty collecting step in none
    assert sum(r["bound_s"] for r in rows) == pytest.approx(steps_bound(SHAPE, 2, frame, CEILINGS)["t_min_s"])
    assert bounds[-1] == 0  # the collecting step reads nothing


def test_device_times_win_when_every_computing_step_has_one():
    device = [5e6, 6e6, 7e6, 8e6, 9e6, 1e6, 2e6, None]  # the collecting step has none
    times, source = step_times_s(steps(RUN, device_ns=device), on_gpu=True, async_scheduling=True)
    assert source == "device" and times.tolist() == pytest.approx([.005, .006, .007, .008, .009, .001, .002, 0])
    device[3] = None  # one step without: fall back to the host for all
    _, source = step_times_s(steps(RUN, device_ns=device), on_gpu=True, async_scheduling=True)
    assert source == "host"


def test_host_times_follow_where_a_step_ran():
    frame = steps(RUN[:3] + [(0, 0)])  # calls of 1, 2, 3 and 4 ms
    # on a CPU (or without async scheduling) call k ran step k
    cpu, _ = step_times_s(frame, on_gpu=False, async_scheduling=True)
    assert cpu.tolist() == pytest.approx([.001, .002, .003, .004])
    # on a GPU with async scheduling step k's tokens come at the end of call k + 1
    gpu, _ = step_times_s(frame, on_gpu=True, async_scheduling=True)
    assert gpu.tolist() == pytest.approx([.003, .003, .004, 0])
    assert gpu.sum() == cpu.sum()  # either way the intervals add up to the run
