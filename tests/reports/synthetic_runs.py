"""Synthetic result frames for report tests (numpy, fast), and reading a rendered page back.

The summary is written by hand in the shape docs/RESULTS.md gives; its numbers are computed
from the same synthetic frames so that tables and figures agree.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pyarrow as pa

from bench.records import DEVICE_COLUMNS, REQUEST_COLUMNS, STEP_COLUMNS

MS = 1_000_000  # ns


def distribution(values) -> dict | None:
    values = np.asarray(values, dtype=np.float64)
    if not len(values):
        return None
    q = np.percentile(values, [50, 90, 95, 99, 99.9])
    return {"n": len(values), "mean": float(values.mean()), "std": float(values.std()),
            "min": float(values.min()), "max": float(values.max()), "p50": float(q[0]),
            "p90": float(q[1]), "p95": float(q[2]), "p99": float(q[3]), "p99.9": float(q[4])}


def _lists(flat: np.ndarray, lengths: np.ndarray) -> pd.Series:
    """A list column (one numpy array per row, as load_run gives) cut from one flat array by
    Arrow, which is much faster than numpy.split for 100k rows."""
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, type=pa.int64())).to_pandas()


def synthetic_requests(n: int, rng: np.random.Generator, *, tpot_ms: float = 20.0,
                       failed: dict[str, int] | None = None, min_out: int = 10, max_out: int = 50) -> pd.DataFrame:
    """n requests with realistic chunk times: TTFT ~ 50-150 ms, then one token per
    ~tpot_ms with jitter. `failed`: {status: count} of the first requests, which end before
    their first token."""
    failed = failed or {}
    n_failed = sum(failed.values())
    arrival = np.sort(rng.uniform(0, n * 5 * MS, n)).astype(np.int64)
    send = arrival + rng.integers(0, MS // 10, n)
    out = rng.integers(min_out, max_out + 1, n)
    out[:n_failed] = 0
    ttft = rng.uniform(50, 150, n) * MS
    gaps = rng.gamma(4.0, tpot_ms / 4.0, int(out.sum())) * MS  # one gap per token, first included
    ends = np.cumsum(out)
    starts = ends - out
    has_tokens = out > 0
    gaps[starts[has_tokens]] = ttft[has_tokens]
    elapsed = np.cumsum(gaps)
    elapsed -= np.repeat(elapsed[starts[has_tokens]] - ttft[has_tokens], out[has_tokens])  # restart per request
    times = (np.repeat(send, out) + elapsed).astype(np.int64)
    padded = np.append(times, 0)  # so that requests without tokens index safely
    first = np.where(has_tokens, padded[starts], np.nan)
    finish = np.where(has_tokens, padded[ends - 1], send + 30 * MS)
    status = np.repeat(list(failed) + ["ok"], list(failed.values()) + [n - n_failed])
    return pd.DataFrame({
        "request_id": pd.Series(np.arange(n)).map("req-{}".format),
        "arrival_ns": arrival,
        "prompt_tokens": rng.integers(64, 1024, n),
        "max_new_tokens": np.maximum(out, min_out),
        "send_ns": send,
        "first_token_ns": pd.array(first, dtype="Int64"),
        "finish_ns": finish.astype(np.int64),
        "output_tokens": out,
        "status": status,
        "error": np.where(status == "ok", None, np.char.add("synthetic ", status.astype(str))),
        "chunk_times_ns": _lists(times, out),
        "chunk_tokens": _lists(np.ones(len(times), dtype=np.int64), out),
        "output_token_ids": None,
    }, columns=REQUEST_COLUMNS)


def synthetic_steps(n: int, rng: np.random.Generator, duration_ns: int, *, padded: bool = False,
                    idle: bool = False, capacity: int = 65536) -> pd.DataFrame:
    """n back-to-back steps filling duration_ns."""
    durations = rng.uniform(5, 25, n)
    durations *= duration_ns / durations.sum()
    end = np.cumsum(durations).astype(np.int64)
    running = rng.integers(1, 32, n)
    used = running * rng.integers(100, 800, n)
    return pd.DataFrame({
        "step": np.arange(n), "start_ns": end - durations.astype(np.int64), "end_ns": end,
        "num_seqs": running, "prefill_tokens": np.where(rng.random(n) < 0.1, rng.integers(64, 2048, n), 0),
        "decode_tokens": running, "padded_tokens": rng.integers(0, 300, n) if padded else np.zeros(n, int),
        "wasted_decode_tokens": rng.integers(0, 8, n) if padded else np.zeros(n, int),
        "sampled_tokens": running, "kv_tokens_used": used,
        "kv_tokens_reserved": np.minimum(used * 2, capacity), "kv_tokens_capacity": np.full(n, capacity),
        "queue_len": rng.integers(0, 50, n), "running": running,
        "idle_slots": rng.integers(0, 4, n) if idle else np.zeros(n, int),
        "preemptions": (rng.random(n) < 0.001).astype(int), "recomputed_tokens": np.zeros(n, int),
        "prefix_cache_hit_tokens": np.zeros(n, int),
    }, columns=STEP_COLUMNS)


def synthetic_device(duration_ns: int, source: str = "nvml", interval_s: float = 0.2) -> pd.DataFrame:
    t = np.arange(0, duration_ns, int(interval_s * 1e9), dtype=np.int64)
    util = 50 + 40 * np.sin(np.arange(len(t)) / 7.0)
    gpu = source == "nvml"
    return pd.DataFrame({
        "t_ns": t, "device": "cuda:0" if gpu else "cpu", "source": source, "utilization_pct": util,
        "memory_used_bytes": np.full(len(t), 40 * 2**30), "memory_total_bytes": np.full(len(t), 141 * 2**30),
        "power_w": np.full(len(t), 450.0) if gpu else None, "energy_j": (np.arange(len(t)) * 90.0) if gpu else None,
        "sm_clock_mhz": np.full(len(t), 1500.0) if gpu else None, "mem_clock_mhz": None,
        "power_capped": (np.arange(len(t)) % 4 != 0) if gpu else None,
    }, columns=DEVICE_COLUMNS)


def empty_frame(columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame({c: [] for c in columns}, columns=columns)


def _itl_ms(ok: pd.DataFrame) -> np.ndarray:
    # every synthetic chunk carries one token, so ITL is each gap inside a request
    lengths = ok["output_tokens"].to_numpy()
    times = np.concatenate([np.asarray(t, dtype=np.int64) for t in ok["chunk_times_ns"]] or [np.empty(0)])
    gaps = np.diff(times).astype(np.float64)
    inside = np.ones(len(times), dtype=bool)
    inside[np.cumsum(lengths)[:-1]] = False
    return gaps[inside[1:]] / MS if len(times) else np.empty(0)


def summary_for(requests: pd.DataFrame, steps: pd.DataFrame, device: pd.DataFrame, **extra) -> dict:
    ok = requests[requests["status"] == "ok"]
    counts = {s: int((requests["status"] == s).sum()) for s in ("ok", "error", "timeout", "cancelled", "rejected")}
    counts["total"] = len(requests)
    ttft = (ok["first_token_ns"].astype(float) - ok["send_ns"]) / MS
    e2e = (ok["finish_ns"].astype(float) - ok["send_ns"]) / MS
    multi = ok[ok["output_tokens"] >= 2]
    tpot = (multi["finish_ns"].astype(float) - multi["first_token_ns"]) / (multi["output_tokens"] - 1) / MS
    itl = _itl_ms(ok)
    w = (ok["finish_ns"].max() - ok["send_ns"].min()) / 1e9 if len(ok) else None
    out_tokens = int(ok["output_tokens"].sum())
    engine = None
    if len(steps):
        useful = int(steps["prefill_tokens"].sum() + steps["decode_tokens"].sum())
        padded = int(steps["padded_tokens"].sum())
        engine = {"steps": len(steps), "prefill_tokens": int(steps["prefill_tokens"].sum()),
                  "decode_tokens": int(steps["decode_tokens"].sum()), "padded_tokens": padded,
                  "wasted_decode_tokens": int(steps["wasted_decode_tokens"].sum()),
                  "padding_efficiency": useful / (useful + padded + int(steps["wasted_decode_tokens"].sum())),
                  "idle_slot_steps": int(steps["idle_slots"].sum()),
                  "kv_utilization_mean": float((steps["kv_tokens_used"] / steps["kv_tokens_reserved"]).mean()),
                  "kv_tokens_peak": int(steps["kv_tokens_used"].max()),
                  "kv_tokens_capacity": int(steps["kv_tokens_capacity"].max()),
                  "running_peak": int(steps["running"].max()), "preemptions": int(steps["preemptions"].sum()),
                  "recomputed_tokens": 0, "prefix_cache_hit_tokens": 0}
    device_block = None
    if len(device):
        device_block = {"source": str(device["source"].iloc[0]),
                        "utilization_pct_mean": float(device["utilization_pct"].mean()),
                        "memory_used_bytes_peak": int(device["memory_used_bytes"].max()),
                        "power_w_mean": None, "energy_j": None, "energy_j_per_output_tok": None}
    summary = {
        "counts": counts, "duration_s": w, "prompt_tokens": int(ok["prompt_tokens"].sum()),
        "output_tokens": out_tokens,
        "output_tok_per_s": out_tokens / w if w else None,
        "total_tok_per_s": (out_tokens + int(ok["prompt_tokens"].sum())) / w if w else None,
        "request_per_s": len(ok) / w if w else None,
        "ttft_ms": distribution(ttft), "ttft_queued_ms": distribution(ttft), "e2e_ms": distribution(e2e),
        "tpot_ms": distribution(tpot), "tpot_not_evaluable": int((ok["output_tokens"] < 2).sum()),
        "itl_ms": distribution(itl), "itl_chunk_ms": distribution(itl),
        "slo": {"ttft_ms": None, "tpot_ms": None, "e2e_ms": None},
        "goodput_req_per_s": None, "slo_attainment": None,
        "concurrency_mean": float(e2e.sum() / 1e3 / w) if w else None, "concurrency_peak": 8 if w else None,
        "engine": engine, "device": device_block, "roofline": None, "consistency": None,
    }
    summary.update(extra)
    return summary


def manifest_for(label: str, engine: str, workload: str, *, sweep: dict | None = None,
                 source: str = "nvml", notes: str = "synthetic") -> dict:
    manifest = {
        "label": label,
        "harness": {"version": "0.1.0", "git_commit": "0123456789abcdef", "git_dirty": False},
        "engine": {"name": engine, "kind": "in-repo", "options": {"max_batch": 32}},
        "model": {"name": "tiny", "path": None, "dtype": "float32", "device": "cpu", "parameters": 1234567,
                  "config": {"vocab_size": 32000}},
        "workload": {"name": workload, "mode": "offline", "concurrency": None, "requests": 10,
                     "content_hash": "sha256:feedface", "spec": {"preset": workload}, "notes": notes},
        "run": {"mode": "offline", "seed": 0, "started_at": "2026-01-02T03:04:05+00:00",
                "status": "complete", "warmup_s": 0.5, "error": None},
        "machine": {"hostname": "testhost", "platform": "Linux", "python": "3.11", "cpu": "Test CPU",
                    "cpu_count": 2, "memory_bytes": 8 * 2**30, "gpu": "NVIDIA H200" if source == "nvml" else None,
                    "gpu_count": 1 if source == "nvml" else 0, "driver": "570", "cuda": "12.8",
                    "torch": "2.13", "transformers": "5.24"},
        "device_sampler": {"source": source, "interval_s": 0.2},
    }
    if sweep is not None:
        manifest["sweep"] = sweep
    return manifest


def figure_specs(page: str) -> dict[str, dict]:
    """{fig-N: spec} from a rendered page."""
    return {m.group(1): json.loads(m.group(2)) for m in
            re.finditer(r'<script type="application/json" id="(fig-\d+)-spec">(.*?)</script>', page, re.S)}


def values(array) -> np.ndarray:
    """A plotly data array from figure JSON: a plain list or a typed array {dtype, bdata}."""
    if isinstance(array, dict) and "bdata" in array:
        return np.frombuffer(base64.b64decode(array["bdata"]), dtype=np.dtype(array["dtype"]))
    return np.asarray(array, dtype=np.float64)
