"""Timeline binning, the per-run timeline figure, and waste totals, by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.records import DEVICE_COLUMNS, STEP_COLUMNS
from reports.runs import view_runs
from reports.sections.timeline import bin_means, run_figure
from reports.sections.waste import waste
from tests.reports.synthetic_runs import empty_frame, synthetic_device, synthetic_steps, values


def test_few_points_are_kept_as_they_are_in_time_order():
    x, means, width = bin_means(np.array([3e9, 1e9, 2e9]), {"v": np.array([30, 10, 20])}, max_bins=3)
    assert list(x) == [1, 2, 3] and list(means["v"]) == [10, 20, 30] and width is None


def test_many_points_are_averaged_per_time_bin_with_gaps_left_empty():
    t = np.array([0, 1, 2, 9, 10]) * 1e9  # bins of 10/3 s: [0, 3.3) holds three, [3.3, 6.7) none
    x, means, width = bin_means(t, {"v": np.array([1.0, 2.0, np.nan, 4.0, 8.0])}, max_bins=3)
    assert width == 10 / 3
    np.testing.assert_allclose(x, [0, 10 / 3, 20 / 3])  # each bin's start
    assert means["v"][0] == 1.5  # the null reading is left out, not counted as 0
    assert np.isnan(means["v"][1])
    assert means["v"][2] == 6.0


def _view(make_run, **kwargs):
    return view_runs([make_run("paged", **kwargs)])[0]


def test_timeline_rows_follow_what_the_run_recorded(make_run):
    full = _view(make_run)
    figure, missing = run_figure(full)
    assert missing == []
    assert [a.text for a in figure.figure.layout.annotations] == [
        "requests", "tokens per step", "KV cache (tokens)", "device utilisation (%)", "SM clock (MHz)"]
    names = [t.name for t in figure.figure.data]
    assert names == ["running", "queued", "prefill", "decode", "padded", "wasted decode", "KV used",
                     "KV reserved", "KV capacity", "util cuda:0", "SM clock cuda:0", "power-capped cuda:0"]
    decode = figure.figure.data[3]
    steps = full.run.steps
    np.testing.assert_array_equal(values(decode.y), steps["decode_tokens"].to_numpy(dtype=np.float32))
    # stairs from each step's start
    np.testing.assert_allclose(values(decode.x), steps["start_ns"].to_numpy() / 1e9, rtol=1e-6)

    steps_only = _view(make_run, device=None)
    figure, missing = run_figure(steps_only)
    assert missing == ["no device samples"] and "No device samples." in figure.caption
    device_only = _view(make_run, steps=False)
    figure, missing = run_figure(device_only)
    assert [a.text for a in figure.figure.layout.annotations] == ["device utilisation (%)", "SM clock (MHz)"]
    nothing = _view(make_run, steps=False, device=None)
    assert run_figure(nothing) == (None, ["no step stats (this engine cannot see its own steps)",
                                          "no device samples"])


def test_engines_without_kv_accounting_get_no_kv_row(make_run):
    view = _view(make_run)
    for column in ("kv_tokens_used", "kv_tokens_reserved", "kv_tokens_capacity"):
        view.run.steps[column] = 0
    figure, _ = run_figure(view)
    assert "KV cache (tokens)" not in [a.text for a in figure.figure.layout.annotations]


def test_long_runs_are_binned(make_run):
    view = _view(make_run, n_steps=20_000)
    figure, _ = run_figure(view)
    assert all(len(values(t.x)) == 1500 for t in figure.figure.data if not t.name.endswith("cuda:0"))
    assert "20,000 steps, each stair the mean over the steps starting in a" in figure.caption


def test_waste_totals_by_hand():
    steps = pd.DataFrame([
        # prefill, decode, padded, wasted, num_seqs, idle, used, reserved
        dict(prefill_tokens=100, decode_tokens=0, padded_tokens=60, wasted_decode_tokens=0, num_seqs=2,
             idle_slots=2, kv_tokens_used=100, kv_tokens_reserved=400),
        dict(prefill_tokens=0, decode_tokens=2, padded_tokens=0, wasted_decode_tokens=2, num_seqs=4,
             idle_slots=0, kv_tokens_used=104, kv_tokens_reserved=400),
    ], columns=STEP_COLUMNS).fillna(0)
    w = waste(steps)
    assert (w.tokens_computed, w.padded, w.wasted_decode) == (164, 60, 2)
    assert (w.idle_slots, w.slot_steps) == (2, 8)
    assert (w.kv_unused, w.kv_reserved) == (300 + 296, 800)
    assert w.share("padded") == 60 / 164 and w.share("idle_slots") == 0.25
    assert w.share("kv_unused") == 596 / 800
    assert waste(empty_frame(STEP_COLUMNS)) is None


def test_synthetic_frames_have_the_record_columns():
    # guards the test data itself: the report must see real column sets
    rng = np.random.default_rng(0)
    assert list(synthetic_steps(5, rng, 10**9).columns) == STEP_COLUMNS
    assert list(synthetic_device(10**9).columns) == DEVICE_COLUMNS


def test_power_capped_readings_are_marked_on_the_clock(make_run):
    view = _view(make_run)
    device = view.run.device
    device["sm_clock_mhz"] = np.where(device["power_capped"], 1500.0, 1980.0)
    figure, _ = run_figure(view)
    traces = {t.name: t for t in figure.figure.data}
    np.testing.assert_array_equal(values(traces["SM clock cuda:0"].y), device["sm_clock_mhz"].to_numpy(np.float32))
    marked = traces["power-capped cuda:0"]
    capped = device[device["power_capped"]]
    np.testing.assert_allclose(values(marked.x), capped["t_ns"].to_numpy() / 1e9, rtol=1e-6)
    assert set(values(marked.y)) == {1500.0}
    assert f"SM clock: {len(capped):,} of {len(device):,} readings with the power limit holding it down" in figure.caption

    device["power_capped"] = None  # bindings that do not say: the clock alone, no markers
    figure, _ = run_figure(view)
    assert [t.name for t in figure.figure.data][-1] == "SM clock cuda:0"
    assert "SM clock (the power limit's hold on it not reported)." in figure.caption
