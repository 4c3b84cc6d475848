"""Metrics against values worked out by hand on small hand-made records (METRICS.md).

Times below are written in ms and stored in ns, as the harness records them.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.metrics import SLO, RecordError, distribution, parse_requests, summarize
from bench.metrics.latency import itl_ms, tpot_ms
from bench.metrics.throughput import concurrency_peak
from bench.records import (
    DeviceSample,
    RequestRecord,
    device_frame,
    requests_frame,
    steps_frame,
)
from engines.api import StepStats

MS = 1_000_000
RESULTS_MD = Path(__file__).resolve().parents[2] / "docs" / "RESULTS.md"


def rec(rid, status="ok", *, arrival=0, send=0, chunks=(), prompt=10, finish=None) -> RequestRecord:
    """A request record from times in ms; chunks: [(time_ms, tokens), ...]."""
    r = RequestRecord(request_id=rid, arrival_ns=arrival * MS, prompt_tokens=prompt,
                      max_new_tokens=16, send_ns=send * MS, status=status)
    for t, k in chunks:
        r.add_chunk(t * MS, list(range(k)), keep_ids=False)
    last = chunks[-1][0] if chunks else None
    r.finish_ns = (finish if finish is not None else last) * MS
    return r


EMPTY_STEPS = steps_frame([])
EMPTY_DEVICE = device_frame([])

# ok: r1 (4 tokens), r2 (3 tokens), r3 (1 token); then one request of every failure status
MIXED = [
    rec("r1", arrival=0, send=0, prompt=10, chunks=[(100, 1), (110, 1), (120, 1), (130, 1)]),
    rec("r2", arrival=0, send=20, prompt=20, chunks=[(150, 1), (170, 1), (190, 1)]),
    rec("r3", arrival=50, send=60, prompt=5, chunks=[(90, 1)]),
    rec("e", "error", send=10, finish=40),
    rec("t", "timeout", send=5, chunks=[(50, 1)], finish=300),
    rec("j", "rejected", send=70, finish=70),
    rec("c", "cancelled", send=30, chunks=[(80, 1)], finish=95),
]


def summary_of(records, steps=EMPTY_STEPS, device=EMPTY_DEVICE, **kwargs) -> dict:
    return summarize(requests_frame(records), steps, device, **kwargs)


def test_counts_window_and_throughput():
    s = summary_of(MIXED)
    assert s["counts"] == {"total": 7, "ok": 3, "error": 1, "timeout": 1, "cancelled": 1, "rejected": 1}
    # W: first ok send 0 ms to last ok token 190 ms; failed requests' later times do not count
    assert s["duration_s"] == pytest.approx(0.190)
    assert s["prompt_tokens"] == 35 and s["output_tokens"] == 8
    assert s["output_tok_per_s"] == pytest.approx(42.1052632)  # 8 / 0.19
    assert s["total_tok_per_s"] == pytest.approx(226.3157895)  # 43 / 0.19
    assert s["request_per_s"] == pytest.approx(15.7894737)  # 3 / 0.19


def test_latency_distributions_over_ok_requests():
    s = summary_of(MIXED)
    # TTFT 100, 130, 30 ms
    assert s["ttft_ms"] == pytest.approx({
        "n": 3, "mean": 86.6666667, "std": 41.8993503, "min": 30.0, "max": 130.0,
        "p50": 100.0, "p90": 124.0, "p95": 127.0, "p99": 129.4, "p99.9": 129.94,
    })
    # from arrival: 100, 150, 40 ms
    assert s["ttft_queued_ms"]["mean"] == pytest.approx(96.6666667)
    assert s["ttft_queued_ms"]["max"] == 150.0
    # E2E 130, 170, 30 ms
    assert (s["e2e_ms"]["n"], s["e2e_ms"]["mean"], s["e2e_ms"]["max"]) == (3, pytest.approx(110.0), 170.0)
    # TPOT: r1 30/3 = 10, r2 40/2 = 20; r3 has one token
    assert (s["tpot_ms"]["n"], s["tpot_ms"]["mean"]) == (2, pytest.approx(15.0))
    assert s["tpot_not_evaluable"] == 1
    # ITL pooled: 10, 10, 10, 20, 20
    assert s["itl_ms"]["n"] == 5
    assert s["itl_ms"]["mean"] == pytest.approx(14.0)
    assert s["itl_ms"]["p50"] == pytest.approx(10.0)
    assert s["itl_chunk_ms"] == s["itl_ms"]  # one token a chunk in-process


def test_concurrency():
    s = summary_of(MIXED)
    # (130 + 170 + 30) / 190
    assert s["concurrency_mean"] == pytest.approx(1.7368421)
    # r1 [0, 130), r2 [20, 190), r3 [60, 90) all overlap between 60 and 90 ms
    assert s["concurrency_peak"] == 3


def test_peak_concurrency_of_touching_intervals_is_one():
    records = [rec("a", send=0, chunks=[(10, 1)]), rec("b", send=10, chunks=[(20, 1)]),
               rec("c", send=20, chunks=[(30, 1)])]
    assert summary_of(records)["concurrency_peak"] == 1


def test_http_chunks_of_several_tokens():
    # 7 tokens: 3 at 100 ms, 1 at 130 ms, 3 at 190 ms
    s = summary_of([rec("h", send=0, chunks=[(100, 3), (130, 1), (190, 3)])])
    assert s["ttft_ms"]["mean"] == pytest.approx(100.0)
    assert s["tpot_ms"]["mean"] == pytest.approx(15.0)  # 90 / 6
    assert s["itl_chunk_ms"]["n"] == 2  # gaps of 30 and 60
    assert s["itl_chunk_ms"]["mean"] == pytest.approx(45.0)
    # per token: 30 for the single token, 60/3 = 20 three times; the first chunk's two extra
    # tokens give no gaps (they arrived with the first token)
    assert s["itl_ms"]["n"] == 4
    assert s["itl_ms"]["min"] == pytest.approx(20.0) and s["itl_ms"]["max"] == pytest.approx(30.0)
    assert s["itl_ms"]["mean"] == pytest.approx(22.5)


def test_slo_goodput_and_attainment():
    # TTFT <= 100 and TPOT <= 15: r1 (100, 10) meets both, inclusive; r2 (130) misses;
    # r3 (30, no TPOT) meets
    s = summary_of(MIXED, slo=SLO(ttft_ms=100, tpot_ms=15))
    assert s["slo"] == {"ttft_ms": 100, "tpot_ms": 15, "e2e_ms": None}
    assert s["goodput_req_per_s"] == pytest.approx(10.5263158)  # 2 / 0.19
    # 2 good of ok 3 + error 1 + timeout 1 + rejected 1; the cancelled one is left out
    assert s["slo_attainment"] == pytest.approx(2 / 6)


def test_e2e_slo_and_tpot_slo_alone():
    # E2E <= 150: r1 130 and r3 30 meet, r2 170 misses
    assert summary_of(MIXED, slo=SLO(e2e_ms=150))["slo_attainment"] == pytest.approx(2 / 6)
    # TPOT <= 12: r1 10 meets, r2 20 misses, r3 not evaluable meets
    assert summary_of(MIXED, slo=SLO(tpot_ms=12))["goodput_req_per_s"] == pytest.approx(2 / 0.19)
    # TTFT <= 20: nobody
    assert summary_of(MIXED, slo=SLO(ttft_ms=20))["slo_attainment"] == 0.0


def test_no_slo_gives_nulls():
    s = summary_of(MIXED)
    assert (s["slo"], s["goodput_req_per_s"], s["slo_attainment"]) == (None, None, None)


def test_bad_slo_is_refused():
    with pytest.raises(ValueError, match="ttft_ms: -5"):
        SLO(ttft_ms=-5)


def test_all_failed_gives_null_rates_not_a_crash():
    records = [rec("e", "error", send=0, finish=10), rec("t", "timeout", send=0, chunks=[(5, 2)], finish=50)]
    s = summary_of(records, slo=SLO(ttft_ms=100))
    assert s["counts"]["ok"] == 0 and s["counts"]["total"] == 2
    for key in ("duration_s", "output_tok_per_s", "total_tok_per_s", "request_per_s", "ttft_ms",
                "e2e_ms", "tpot_ms", "itl_ms", "itl_chunk_ms", "concurrency_mean",
                "concurrency_peak", "goodput_req_per_s"):
        assert s[key] is None, key
    assert s["output_tokens"] == 0 and s["tpot_not_evaluable"] == 0
    assert s["slo_attainment"] == 0.0  # 0 good of 2 counted


def test_empty_run():
    s = summarize(requests_frame([]), EMPTY_STEPS, EMPTY_DEVICE, slo=SLO(e2e_ms=1))
    assert s["counts"] == {"total": 0, "ok": 0, "error": 0, "timeout": 0, "cancelled": 0, "rejected": 0}
    assert s["slo_attainment"] is None and s["engine"] is None and s["device"] is None


def test_summary_keys_are_the_documented_ones_and_json_clean():
    s = summary_of(MIXED, slo=SLO(ttft_ms=100))
    section = RESULTS_MD.read_text().split("## summary.json", 1)[1]
    documented = set()
    for row in re.findall(r"^\| (`.+?) \|", section, flags=re.M):
        documented |= set(re.findall(r"`([a-z0-9_]+)`", row))
    # "load" is added by `bench load` on top of this summary, format_version by the writer
    assert set(s) == documented - {"format_version", "load"}
    json.dumps(s, allow_nan=False)  # no NaN, no numpy scalars


def test_same_summary_after_a_parquet_round_trip(tmp_path):
    frame = requests_frame(MIXED)
    frame.to_parquet(tmp_path / "r.parquet", index=False)
    again = pd.read_parquet(tmp_path / "r.parquet")
    assert summarize(again, EMPTY_STEPS, EMPTY_DEVICE) == summarize(frame, EMPTY_STEPS, EMPTY_DEVICE)


def test_roofline_efficiency_against_the_window():
    bound = {"t_min_s": 0.095, "bound": "memory", "flops": 1, "bytes": 2, "ceilings": {}}
    assert summary_of(MIXED, roofline=bound)["roofline"]["efficiency"] == pytest.approx(0.5)  # 0.095/0.19
    assert summary_of(MIXED)["roofline"] is None


# --- engine block ----------------------------------------------------------------------

def step(start, end, **counters) -> StepStats:
    return StepStats(start_ns=start, end_ns=end, **counters)


def test_engine_block_from_steps():
    steps = steps_frame([
        step(0, 10, prefill_tokens=100, padded_tokens=20, kv_tokens_used=100, kv_tokens_reserved=200,
             kv_tokens_capacity=1000, running=2),
        step(10, 40, decode_tokens=2, kv_tokens_used=102, kv_tokens_reserved=200,
             kv_tokens_capacity=1000, running=2, idle_slots=1),
        step(40, 50, decode_tokens=1, wasted_decode_tokens=1, kv_tokens_capacity=1000, idle_slots=1,
             preemptions=1, recomputed_tokens=5, prefix_cache_hit_tokens=16),
    ])
    e = summary_of(MIXED, steps=steps)["engine"]
    assert e == {
        "steps": 3, "prefill_tokens": 100, "decode_tokens": 3, "padded_tokens": 20,
        "wasted_decode_tokens": 1,
        "padding_efficiency": pytest.approx(103 / 124),  # useful 100 + 3 of 100 + 3 + 20 + 1
        "idle_slot_steps": 2,
        # 0.5 for 10 ns, 0.51 for 30 ns; the last step reserved nothing and is skipped
        "kv_utilization_mean": pytest.approx(0.5075),
        "kv_tokens_peak": 102, "kv_tokens_capacity": 1000, "running_peak": 2,
        "preemptions": 1, "recomputed_tokens": 5, "prefix_cache_hit_tokens": 16,
        "cuda_graph_steps": None, "eager_steps": None,  # these steps do not say
    }


def test_cuda_graph_and_eager_steps_are_counted_where_steps_say(tmp_path):
    steps = steps_frame([step(0, 10, prefill_tokens=900, cuda_graph=False), step(10, 12, decode_tokens=4, cuda_graph=True),
                         step(12, 14, decode_tokens=4, cuda_graph=True), step(14, 15)])  # the last computes nothing
    e = summary_of(MIXED, steps=steps)["engine"]
    assert (e["cuda_graph_steps"], e["eager_steps"]) == (2, 1)
    # through a parquet file (nullable booleans) the same
    steps.to_parquet(tmp_path / "s.parquet", index=False)
    again = summary_of(MIXED, steps=pd.read_parquet(tmp_path / "s.parquet"))["engine"]
    assert (again["cuda_graph_steps"], again["eager_steps"]) == (2, 1)


def test_engine_steps_count_forward_passes_only():
    """An async-scheduled run ends with a step that only collects the last tokens."""
    steps = steps_frame([step(0, 10, prefill_tokens=8), step(10, 20, decode_tokens=2), step(20, 21)])
    assert summary_of(MIXED, steps=steps)["engine"]["steps"] == 2


def test_engine_block_null_without_steps():
    assert summary_of(MIXED)["engine"] is None


def test_kv_utilization_with_zero_length_steps_weighs_steps_equally():
    steps = steps_frame([step(5, 5, kv_tokens_used=1, kv_tokens_reserved=4),
                         step(5, 5, kv_tokens_used=3, kv_tokens_reserved=4)])
    assert summary_of(MIXED, steps=steps)["engine"]["kv_utilization_mean"] == pytest.approx(0.5)


# --- device block ----------------------------------------------------------------------

def gpu(t_ms, util, mem, power, energy, device="gpu0") -> DeviceSample:
    return DeviceSample(t_ns=t_ms * MS, device=device, source="nvml", utilization_pct=util,
                        memory_used_bytes=mem, power_w=power, energy_j=energy)


def test_device_block_over_the_window():
    # W is [0, 190] ms; the samples at -100 and 200 ms fall outside it
    samples = [gpu(-100, 0, 9e9, 50, 1000), gpu(0, 40, 1e9, 100, 1000), gpu(50, 60, 2e9, 200, 1010),
               gpu(100, 80, 3e9, 300, 1030), gpu(150, 100, 2e9, 200, 1060), gpu(200, 20, 9e9, 900, 1100)]
    d = summary_of(MIXED, device=device_frame(samples))["device"]
    assert d["source"] == "nvml"
    assert d["utilization_pct_mean"] == pytest.approx(70.0)  # (40+60+80+100)/4
    assert d["memory_used_bytes_peak"] == 3_000_000_000
    assert d["power_w_mean"] == pytest.approx(200.0)
    # counter at 190 ms: 1060 + (1100-1060)*40/50 = 1092; at 0 ms: 1000
    assert d["energy_j"] == pytest.approx(92.0)
    assert d["energy_j_per_output_tok"] == pytest.approx(11.5)  # 92 J / 8 tokens


def test_two_devices_sum_memory_power_energy_and_average_utilisation():
    samples = [gpu(0, 40, 1e9, 100, 0, "a"), gpu(190, 60, 1e9, 100, 10, "a"),
               gpu(0, 80, 2e9, 300, 0, "b"), gpu(190, 100, 2e9, 300, 30, "b")]
    d = summary_of(MIXED, device=device_frame(samples))["device"]
    assert d["utilization_pct_mean"] == pytest.approx(70.0)  # (50 + 90) / 2
    assert d["memory_used_bytes_peak"] == 3_000_000_000
    assert d["power_w_mean"] == pytest.approx(400.0)
    assert d["energy_j"] == pytest.approx(40.0)


def test_cpu_source_without_power_or_energy():
    samples = [DeviceSample(t_ns=t * MS, device="cpu", source="cpu", utilization_pct=u)
               for t, u in [(0, 50.0), (100, 100.0)]]
    d = summary_of(MIXED, device=device_frame(samples))["device"]
    assert d == {"source": "cpu", "utilization_pct_mean": 75.0, "memory_used_bytes_peak": None,
                 "power_w_mean": None, "sm_clock_mhz_mean": None, "power_capped_pct": None,
                 "energy_j": None, "energy_j_per_output_tok": None}


def test_power_capped_share_and_mean_clock_over_the_window():
    def capped(t_ms, clock, flag):
        return DeviceSample(t_ns=t_ms * MS, device="gpu0", source="nvml", sm_clock_mhz=clock, power_capped=flag)

    # W is [0, 190] ms: the reading at 200 ms is outside it; one inside does not say
    samples = [capped(0, 1980, False), capped(50, 1500, True), capped(100, 1400, True),
               capped(150, 1600, None), capped(200, 1980, False)]
    d = summary_of(MIXED, device=device_frame(samples))["device"]
    assert d["power_capped_pct"] == pytest.approx(200 / 3)  # 2 of the 3 that say
    assert d["sm_clock_mhz_mean"] == pytest.approx((1980 + 1500 + 1400 + 1600) / 4)


def test_readings_that_do_not_say_leave_the_power_capped_share_unknown():
    # NVML bindings without clock-event reasons, or a file from before the column (loaded as None)
    d = summary_of(MIXED, device=device_frame([gpu(0, 40, 1e9, 100, 1000), gpu(190, 60, 1e9, 100, 1010)]))["device"]
    assert d["power_capped_pct"] is None and d["utilization_pct_mean"] == pytest.approx(50.0)


def test_energy_counter_going_down_is_an_error():
    samples = [gpu(0, 1, 1, 1, 500), gpu(100, 1, 1, 1, 400)]
    with pytest.raises(ValueError, match="energy_j went down from 500.0 to 400.0"):
        summary_of(MIXED, device=device_frame(samples))


# --- bad records -----------------------------------------------------------------------

def broken(**changes) -> pd.DataFrame:
    frame = requests_frame(MIXED[:2])
    for column, value in changes.items():
        frame.at[0, column] = value
    return frame


@pytest.mark.parametrize("changes, message", [
    ({"status": "done"}, r"request 'r1': status = 'done', expected one of ok, error"),
    ({"output_tokens": 5}, r"request 'r1': output_tokens = 5, expected the sum of chunk_tokens \(4\)"),
    ({"chunk_tokens": [1, 1, 1]}, r"request 'r1': chunk_tokens = .*one count per chunk time \(4"),
    ({"chunk_times_ns": [100 * MS, 90 * MS, 120 * MS, 130 * MS]}, r"chunk_times_ns = .*non-decreasing"),
    ({"send_ns": 150 * MS}, r"request 'r1': first_token_ns = 100000000, expected a time at or after send_ns"),
    ({"first_token_ns": 1}, r"request 'r1': first_token_ns = 1, expected the first chunk's time"),
    ({"request_id": "r2"}, r"request_id 'r2' appears more than once"),
])
def test_bad_records_name_request_field_and_value(changes, message):
    with pytest.raises(RecordError, match=message):
        parse_requests(broken(**changes))


def test_missing_columns_are_named():
    with pytest.raises(RecordError, match=r"missing columns \['chunk_tokens'\]"):
        parse_requests(requests_frame(MIXED).drop(columns=["chunk_tokens"]))


# --- distribution and properties -------------------------------------------------------

def test_distribution():
    assert distribution([]) is None
    d = distribution([1.0, 2.0, 3.0, 4.0])
    # linear interpolation: p90 at rank 0.9 * 3 = 2.7 -> 3 + 0.7
    assert d == pytest.approx({"n": 4, "mean": 2.5, "std": 1.1180340, "min": 1.0, "max": 4.0,
                               "p50": 2.5, "p90": 3.7, "p95": 3.85, "p99": 3.97, "p99.9": 3.997})
    assert distribution([7])["std"] == 0.0
    with pytest.raises(ValueError, match="finite"):
        distribution([1.0, float("nan")])


chunk_lists = st.lists(st.tuples(st.integers(0, 50), st.integers(1, 4)), min_size=1, max_size=12)


@given(send=st.integers(0, 100), ttft=st.integers(0, 100), chunks=chunk_lists)
def test_itl_gaps_cover_first_to_last_token(send, ttft, chunks):
    t, timed = send + ttft, []
    for gap, k in chunks:
        t += gap
        timed.append((t, k))
    (r,) = parse_requests(requests_frame([rec("x", send=send, chunks=timed)]))
    gaps = itl_ms(r)
    assert len(gaps) == r.output_tokens - timed[0][1]
    assert gaps.sum() == pytest.approx(timed[-1][0] - timed[0][0])
    if all(k == 1 for _, k in timed) and len(timed) > 1:  # in-process: mean ITL is TPOT
        assert gaps.mean() == pytest.approx(tpot_ms(r))


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 30)), min_size=1, max_size=15))
def test_peak_concurrency_equals_a_brute_force_count(intervals):
    records = [rec(f"r{i}", send=s, chunks=[(s + d, 1)]) for i, (s, d) in enumerate(intervals)]
    ok = parse_requests(requests_frame(records))
    # count at every whole ms how many [send, send + d) contain it
    brute = max(sum(s <= t < s + d for s, d in intervals) for t in range(0, 61))
    assert concurrency_peak(ok) == brute
    s = summary_of(records)
    # mean in flight x W = the summed E2E, in seconds
    assert np.isclose(s["concurrency_mean"] * s["duration_s"], sum(d for _, d in intervals) / 1000)
