"""Per-request values from hand-made records, and the deterministic reduction a baseline keeps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.records import RequestRecord, requests_frame
from bench.regression.samples import MAX_SAMPLES, pooled_samples, reduce_values, request_values

MS = 1_000_000


def frame():
    a = RequestRecord("a", 0, 10, 3, send_ns=0, first_token_ns=40 * MS, finish_ns=70 * MS, output_tokens=3,
                      chunk_times_ns=[40 * MS, 50 * MS, 70 * MS], chunk_tokens=[1, 1, 1])
    # an HTTP stream: 4 tokens in 2 chunks; the first chunk carries 2 tokens
    b = RequestRecord("b", 5 * MS, 10, 4, send_ns=10 * MS, first_token_ns=20 * MS, finish_ns=60 * MS,
                      output_tokens=4, chunk_times_ns=[20 * MS, 60 * MS], chunk_tokens=[2, 2])
    single = RequestRecord("c", 0, 10, 1, send_ns=0, first_token_ns=30 * MS, finish_ns=30 * MS, output_tokens=1,
                           chunk_times_ns=[30 * MS], chunk_tokens=[1])
    failed = RequestRecord("d", 0, 10, 5, send_ns=0, first_token_ns=5 * MS, finish_ns=900 * MS, output_tokens=1,
                           status="timeout", chunk_times_ns=[5 * MS], chunk_tokens=[1])
    return requests_frame([a, b, single, failed])


def test_request_values_by_hand():
    v = request_values(frame())
    np.testing.assert_allclose(v["ttft_ms"], [40, 10, 30])  # the timeout is left out
    np.testing.assert_allclose(v["e2e_ms"], [70, 50, 30])
    np.testing.assert_allclose(v["tpot_ms"], [15, 40 / 3])  # c has one token: not evaluable
    # a: gaps 10, 20; b: one 40 ms gap carrying 2 tokens -> two gaps of 20; b's first chunk: none
    np.testing.assert_allclose(sorted(v["itl_ms"]), [10, 20, 20, 20])


def test_pooled_repeats_count_every_value():
    samples, sizes, per_run = pooled_samples([request_values(frame()), request_values(frame())])
    assert sizes == {"ttft_ms": 6, "tpot_ms": 4, "itl_ms": 8, "e2e_ms": 6}
    np.testing.assert_allclose(samples["ttft_ms"], [10, 10, 30, 30, 40, 40])  # sorted
    # each run's own percentiles: TTFT 10, 30, 40 -> p50 30, p99 30 + 0.98 * (40 - 30)
    assert len(per_run) == 2 and per_run[0] == per_run[1]
    assert per_run[0]["ttft_ms.p50"] == 30 and per_run[0]["ttft_ms.p99"] == pytest.approx(39.8)
    assert per_run[0]["tpot_ms.p50"] == pytest.approx((15 + 40 / 3) / 2)


def test_reduction_of_a_large_sample_keeps_its_quantiles():
    values = np.random.default_rng(0).lognormal(3, 1, 50_000)
    reduced = reduce_values(values)
    assert len(reduced) == MAX_SAMPLES
    assert (reduced[0], reduced[-1]) == pytest.approx((values.min(), values.max()), rel=5e-4)
    for q in (0.1, 0.5, 0.9, 0.99):
        assert np.quantile(reduced, q) == pytest.approx(np.quantile(values, q), rel=2e-3)
    # in the far tail the grid is coarse: interpolating across it still lands within 1%
    assert np.quantile(reduced, 0.999) == pytest.approx(np.quantile(values, 0.999), rel=1e-2)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(1e-3, 1e6), min_size=0, max_size=3000))
def test_reduction_is_sorted_bounded_and_idempotent(values):
    reduced = reduce_values(np.array(values))
    assert len(reduced) == min(len(values), MAX_SAMPLES)
    assert np.all(np.diff(reduced) >= 0)
    if values:
        # 4 significant digits: within 0.05% of the original range
        assert reduced[0] >= min(values) * (1 - 5e-4) and reduced[-1] <= max(values) * (1 + 5e-4)
    np.testing.assert_array_equal(reduce_values(reduced), reduced)


def test_reduction_drops_non_finite_values():
    np.testing.assert_array_equal(reduce_values(np.array([3.0, np.nan, 1.0, np.inf])), [1.0, 3.0])
