"""What the engine did, from its per-step counters (steps.parquet, engines.api.StepStats)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.records import POSITION_COLUMNS, STEP_COLUMNS


def padding_efficiency(prefill: int, decode: int, padded: int, wasted_decode: int) -> float | None:
    """Useful tokens computed / tokens computed, where useful = prefill + decode and computed
    = prefill + decode + padded + wasted decode. Higher is better (1.0: nothing wasted).

    Decode tokens computed for rows that had already finished (`naive`) are computed and
    thrown away, so they count as waste next to padding. None when nothing was computed."""
    computed = prefill + decode + padded + wasted_decode
    return None if computed == 0 else (prefill + decode) / computed


def kv_utilization_mean(steps: pd.DataFrame) -> float | None:
    """Time-weighted mean over steps of kv_tokens_used / kv_tokens_reserved, each step
    weighted by its wall time (end_ns - start_ns). Higher is better.

    Steps with nothing reserved are skipped (no requests held memory). If every kept step
    has zero duration (a clock too coarse, a mock engine), steps weigh equally. None when no
    step reserved anything."""
    kept = steps[steps["kv_tokens_reserved"] > 0]
    if kept.empty:
        return None
    ratio = kept["kv_tokens_used"].to_numpy(np.float64) / kept["kv_tokens_reserved"].to_numpy(np.float64)
    weight = (kept["end_ns"] - kept["start_ns"]).to_numpy(np.float64)
    if (weight < 0).any():
        bad = kept.loc[(kept["end_ns"] - kept["start_ns"]) < 0, "step"].iloc[0]
        raise ValueError(f"steps frame, step {bad}: end_ns before start_ns, expected end_ns >= start_ns")
    if weight.sum() == 0:
        return float(ratio.mean())
    return float((ratio * weight).sum() / weight.sum())


def cuda_graph_steps(steps: pd.DataFrame) -> tuple[int | None, int | None]:
    """(steps replayed from a CUDA graph, steps launched eagerly) among the steps that say
    which; (None, None) when none says (peers, files older than the column)."""
    known = steps["cuda_graph"].dropna()
    if known.empty:
        return None, None
    graphed = int(known.astype(bool).sum())
    return graphed, len(known) - graphed


def engine_summary(steps: pd.DataFrame) -> dict | None:
    """The summary's `engine` block; None for an engine that reports no steps."""
    missing = [c for c in STEP_COLUMNS if c not in steps.columns]
    if missing:
        raise ValueError(f"steps frame: missing columns {missing}")
    if steps.empty:
        return None
    graphed, eager = cuda_graph_steps(steps)

    def total(column: str) -> int:
        return int(steps[column].sum())

    return {
        # forward passes: a step that only collects the previous step's tokens (the last
        # one of an async-scheduled run) computes nothing
        "steps": int((steps[POSITION_COLUMNS].sum(axis=1) > 0).sum()),
        "prefill_tokens": total("prefill_tokens"),
        "decode_tokens": total("decode_tokens"),
        "padded_tokens": total("padded_tokens"),
        "wasted_decode_tokens": total("wasted_decode_tokens"),
        "padding_efficiency": padding_efficiency(
            total("prefill_tokens"), total("decode_tokens"),
            total("padded_tokens"), total("wasted_decode_tokens"),
        ),
        "idle_slot_steps": total("idle_slots"),
        "kv_utilization_mean": kv_utilization_mean(steps),
        "kv_tokens_peak": int(steps["kv_tokens_used"].max()),
        "kv_tokens_capacity": int(steps["kv_tokens_capacity"].max()),
        "running_peak": int(steps["running"].max()),
        "preemptions": total("preemptions"),
        "recomputed_tokens": total("recomputed_tokens"),
        "prefix_cache_hit_tokens": total("prefix_cache_hit_tokens"),
        # with CUDA graphs on, an eager step is one the graphs do not cover (e.g. a mixed step
        # over mixed_graph_tokens): on a small model it costs several graphed steps' time
        "cuda_graph_steps": graphed,
        "eager_steps": eager,
    }
