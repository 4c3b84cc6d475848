"""Per-request latencies for the CDFs, against values worked out by hand, and CDF downsampling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.metrics import summarize
from bench.records import DEVICE_COLUMNS, REQUEST_COLUMNS, STEP_COLUMNS
from reports.samples import latency_samples
from reports.sections.latency import MAX_POINTS, cdf_points
from tests.reports.synthetic_runs import empty_frame, synthetic_requests

MS = 1_000_000


def _request(rid, send_ms, chunk_ms, tokens, status="ok"):
    times = [int(t * MS) for t in chunk_ms]
    return {"request_id": rid, "arrival_ns": 0, "prompt_tokens": 8, "max_new_tokens": 8,
            "send_ns": int(send_ms * MS), "first_token_ns": times[0] if times else None,
            "finish_ns": times[-1] if times else None, "output_tokens": sum(tokens), "status": status,
            "error": None if status == "ok" else "boom", "chunk_times_ns": times, "chunk_tokens": tokens,
            "output_token_ids": None}


def _frame(*rows):
    return pd.DataFrame(list(rows), columns=REQUEST_COLUMNS)


def test_latencies_by_hand():
    frame = _frame(
        _request("a", 0, [10, 12, 15], [1, 1, 1]),  # TTFT 10, E2E 15, TPOT 5/2, ITL 2 and 3
        _request("b", 100, [130, 140], [1, 4]),  # HTTP chunk of 4: TTFT 30, E2E 40, TPOT 10/4, ITL 4 x 2.5
        _request("c", 0, [5], [1]),  # one token: no TPOT, no ITL
        _request("d", 0, [50, 60], [1, 1], status="error"),  # not ok: left out everywhere
        _request("e", 0, [], [], status="rejected"),
    )
    got = latency_samples(frame)
    np.testing.assert_allclose(got["ttft_ms"], [10, 30, 5])
    np.testing.assert_allclose(got["e2e_ms"], [15, 40, 5])
    np.testing.assert_allclose(got["tpot_ms"], [2.5, 2.5])
    np.testing.assert_allclose(np.sort(got["itl_ms"]), [2, 2.5, 2.5, 2.5, 2.5, 3])


def test_no_gap_is_counted_across_requests():
    # b's first chunk (t=5) comes before a's last (t=20) in the flattened order: no negative gap
    frame = _frame(_request("a", 0, [10, 20], [1, 1]), _request("b", 0, [5, 8], [1, 1]))
    np.testing.assert_allclose(np.sort(latency_samples(frame)["itl_ms"]), [3, 10])


def test_mismatched_chunk_lists_are_named():
    row = _request("bad-one", 0, [10, 12], [1, 1])
    row["chunk_tokens"] = [1]
    with pytest.raises(ValueError, match="'bad-one': chunk_times_ns and chunk_tokens differ"):
        latency_samples(_frame(row))


def test_empty_and_all_failed_frames_give_empty_arrays():
    got = latency_samples(_frame(_request("x", 0, [], [], status="timeout")))
    assert all(len(v) == 0 for v in got.values())
    assert all(len(v) == 0 for v in latency_samples(_frame()).values())


def test_small_cdf_is_the_exact_empirical_cdf():
    x, y = cdf_points(np.array([3.0, 1.0, 2.0, 2.0]))
    assert list(x) == [1, 2, 2, 3] and list(y) == [0.25, 0.5, 0.75, 1.0]


def test_large_cdf_is_downsampled_to_quantiles():
    rng = np.random.default_rng(0)
    raw = rng.lognormal(3, 1, 200_000)
    x, y = cdf_points(raw)
    assert len(x) == len(y) == MAX_POINTS
    assert x[0] == raw.min() and x[-1] == raw.max() and y[0] == 0 and y[-1] == 1
    for p in (0.5, 0.9, 0.99):  # reading a percentile off the line gives the real one
        assert np.interp(p, y, x) == pytest.approx(np.quantile(raw, p), rel=0.02)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=3000), st.integers(2, 500))
def test_cdf_points_are_monotone_and_bounded(raw, max_points):
    x, y = cdf_points(np.array(raw), max_points)
    assert len(x) == len(y) == min(len(raw), max_points)
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) > 0)
    assert 0 <= y[0] and y[-1] == 1 and x[-1] == max(raw) and x[0] == min(raw)


def test_cdf_values_are_the_ones_the_summary_describes():
    """The CDFs and summary.json (bench.metrics) must describe the same values: same count,
    same mean and extremes, for every metric, with HTTP-style multi-token chunks included."""
    rng = np.random.default_rng(3)
    frame = pd.concat([
        synthetic_requests(200, rng, failed={"error": 5, "timeout": 2}),
        _frame(_request("http-1", 0, [10, 30, 31], [2, 3, 1]), _request("one", 0, [5], [1])),
    ], ignore_index=True)
    summary = summarize(frame, empty_frame(STEP_COLUMNS), empty_frame(DEVICE_COLUMNS))
    got = latency_samples(frame)
    for metric in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        values, expected = got[metric], summary[metric]
        assert len(values) == expected["n"], metric
        assert values.mean() == pytest.approx(expected["mean"]), metric
        assert (values.min(), values.max()) == pytest.approx((expected["min"], expected["max"])), metric
