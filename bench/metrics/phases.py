"""Where an in-repo engine's time goes, phase by phase, against the bound of its own steps.

Steps are grouped into those that compute prompt tokens (with whatever decodes ride along)
and decode-only steps by how many requests they decode: a draining batch ends in small steps
that read every weight for a few tokens. For each phase: its steps, the positions they
computed, their time and the sum of their bounds (bench.roofline.step_bounds).

A step's time is its time on the device (`device_ns`: CUDA events from a marker queued as the
host starts launching it to its tokens' copy) where the engine measured it. Without it (a
CPU, files from before the column) it is the interval between the moments the step's tokens
and the previous step's reached the host: at the end of the engine's step() call k + 1 for
step k with async scheduling on a GPU (call k + 1 launches step k + 1 before it waits for
step k), at the end of call k otherwise (on a CPU launching a step runs it). Those intervals
add up to the run, but a step of more kernels than the launch queue holds (a padded prefill
of several forwards) blocks the host while it runs, and part of its time then falls on a
neighbouring step."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.records import POSITION_COLUMNS

# (phase, lowest and highest decode count of a decode-only step; None: steps with prompt tokens)
PHASES = [
    ("prompt steps", None),
    ("decode, 200+ requests", (200, None)),
    ("decode, 100-199", (100, 199)),
    ("decode, 50-99", (50, 99)),
    ("decode, 1-49", (1, 49)),
]


def step_times_s(steps: pd.DataFrame, *, on_gpu: bool, async_scheduling: bool) -> tuple[np.ndarray, str]:
    """Each step's time in seconds and where it came from: "device" (CUDA events) when every
    computing step has one, else "host" (intervals between tokens reaching the host)."""
    computed = steps[POSITION_COLUMNS].sum(axis=1).to_numpy() > 0
    device = steps["device_ns"] if "device_ns" in steps.columns else None
    if device is not None and computed.any() and device[computed].notna().all():
        return np.where(computed, device.fillna(0).to_numpy(np.float64), 0.0) / 1e9, "device"
    ends = steps["end_ns"].to_numpy(np.int64)
    arrived = np.append(ends[1:], ends[-1]) if on_gpu and async_scheduling else ends
    return np.diff(arrived, prepend=steps["start_ns"].iloc[0]) / 1e9, "host"


def _in_phase(steps: pd.DataFrame, decodes) -> pd.Series:
    if decodes is None:
        return steps["prefill_tokens"] > 0
    low, high = decodes
    selected = (steps["prefill_tokens"] == 0) & (steps["decode_tokens"] >= low)
    return selected if high is None else selected & (steps["decode_tokens"] <= high)


def phase_breakdown(steps: pd.DataFrame, times_s: np.ndarray, bounds_s: np.ndarray) -> list[dict]:
    """One row per phase that has steps: {phase, steps, positions, time_s, bound_s}, from each
    step's time (step_times_s) and bound (bench.roofline.step_bounds)."""
    rows = []
    for phase, decodes in PHASES:
        selected = _in_phase(steps, decodes).to_numpy()
        if not selected.any():
            continue
        rows.append({
            "phase": phase,
            "steps": int(selected.sum()),
            "positions": int(steps[selected][POSITION_COLUMNS].to_numpy().sum()),
            "time_s": float(times_s[selected].sum()),
            "bound_s": float(bounds_s[selected].sum()),
        })
    return rows
