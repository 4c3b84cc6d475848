"""A timeline per run: requests running and queued, the tokens each step computed (useful
prefill and decode, padding, wasted decode), KV cache use, device utilisation, and the GPU's
SM clock with the readings at which its power limit held the clock down.

A step's counters hold from its start until the next step starts, so they are drawn as a
staircase from each step's start time: a long prefill step shows as a long flat block, not
as a ramp. Above MAX_BINS steps each stair is the mean over the steps that started in one of
MAX_BINS equal time bins (a bin with no step is a gap), so a run of a million steps draws as
fast, and weighs as little, as one of a thousand.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from plotly.subplots import make_subplots

from reports.figstyle import compact, trace_name
from reports.html import note
from reports.page import Figure, Section
from reports.runs import RunView

MAX_BINS = 1500
CLOCK_ROW = "SM clock (MHz)"
NS_PER_S = 1e9
TOKEN_SERIES = (  # column, legend, colour: the useful work first, the waste on top
    ("prefill_tokens", "prefill", "#636efa"),
    ("decode_tokens", "decode", "#00cc96"),
    ("padded_tokens", "padded", "#ef553b"),
    ("wasted_decode_tokens", "wasted decode", "#ffa15a"),
)


def bin_means(t_ns: np.ndarray, series: dict[str, np.ndarray], max_bins: int = MAX_BINS):
    """(x in seconds, {name: values}, bin width in s or None when not binned).

    Up to max_bins points are returned as they are (sorted by time); more are averaged in
    max_bins equal time bins, x being each bin's start, NaN where a bin holds no point."""
    t_ns = np.asarray(t_ns, dtype=np.float64)
    order = np.argsort(t_ns, kind="stable")
    t_ns = t_ns[order]
    series = {k: np.asarray(v, dtype=np.float64)[order] for k, v in series.items()}
    if len(t_ns) <= max_bins:
        return t_ns / NS_PER_S, series, None
    edges = np.linspace(t_ns[0], t_ns[-1], max_bins + 1)
    index = np.clip(np.searchsorted(edges, t_ns, side="right") - 1, 0, max_bins - 1)
    means = {}
    for name, values in series.items():
        finite = np.isfinite(values)  # a null reading is left out of its bin's mean
        sums = np.bincount(index[finite], weights=values[finite], minlength=max_bins)
        n = np.bincount(index[finite], minlength=max_bins)
        means[name] = np.where(n > 0, sums / np.maximum(n, 1), np.nan)
    return edges[:-1] / NS_PER_S, means, (edges[1] - edges[0]) / NS_PER_S


def _numeric(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _rows(view: RunView) -> list[str]:
    rows = []
    steps = view.run.steps
    if len(steps):
        rows += ["requests", "tokens per step"]
        if _numeric(steps, "kv_tokens_capacity").max(initial=0) > 0 or \
                _numeric(steps, "kv_tokens_reserved").max(initial=0) > 0:
            rows.append("KV cache (tokens)")
    if len(view.run.device) and np.isfinite(_numeric(view.run.device, "utilization_pct")).any():
        rows.append("device utilisation (%)")
    if len(view.run.device) and np.isfinite(_numeric(view.run.device, "sm_clock_mhz")).any():
        rows.append(CLOCK_ROW)
    return rows


def _legend(rows: list[str], row_title: str) -> str:
    """Each subplot row has its own legend beside it (legend, legend2, ...)."""
    n = rows.index(row_title) + 1
    return "legend" if n == 1 else f"legend{n}"


def _add_steps(figure, view: RunView, rows: list[str]) -> str:
    steps = view.run.steps
    columns = ["running", "queue_len", "kv_tokens_used", "kv_tokens_reserved", "kv_tokens_capacity"]
    columns += [c for c, _, _ in TOKEN_SERIES]
    x, means, width = bin_means(_numeric(steps, "start_ns"), {c: _numeric(steps, c) for c in columns})
    x = compact(x)
    row = rows.index("requests") + 1
    for column, name, color in (("running", "running", "#2a3f5f"), ("queue_len", "queued", "#ab63fa")):
        figure.add_scatter(x=x, y=compact(means[column]), mode="lines", name=name,
                           legend=_legend(rows, "requests"), line={"color": color, "width": 1.5, "shape": "hv"},
                           row=row, col=1)
    row = rows.index("tokens per step") + 1
    for column, name, color in TOKEN_SERIES:
        figure.add_scatter(x=x, y=compact(means[column]), mode="lines", name=name, stackgroup="tokens",
                           legend=_legend(rows, "tokens per step"),
                           line={"color": color, "width": 0.5, "shape": "hv"},
                           row=row, col=1)
    if "KV cache (tokens)" in rows:
        row = rows.index("KV cache (tokens)") + 1
        for column, name, color, dash in (("kv_tokens_used", "KV used", "#00cc96", "solid"),
                                          ("kv_tokens_reserved", "KV reserved", "#636efa", "solid"),
                                          ("kv_tokens_capacity", "KV capacity", "#7f7f7f", "dash")):
            figure.add_scatter(x=x, y=compact(means[column]), mode="lines", name=name,
                               legend=_legend(rows, "KV cache (tokens)"),
                               line={"color": color, "dash": dash, "width": 1.5, "shape": "hv"}, row=row, col=1)
    if width is None:
        return f"{len(steps):,} steps, one stair each, from the step's start."
    return f"{len(steps):,} steps, each stair the mean over the steps starting in a {width * 1e3:.3g} ms bin."


def _add_device(figure, view: RunView, rows: list[str]) -> str:
    device = view.run.device
    row = rows.index("device utilisation (%)") + 1
    sources = set()
    for name, samples in device.groupby("device", sort=True, dropna=False):
        sources.update(str(s) for s in samples["source"].dropna().unique())
        x, means, _ = bin_means(_numeric(samples, "t_ns"), {"u": _numeric(samples, "utilization_pct")})
        figure.add_scatter(x=compact(x), y=compact(means["u"]), mode="lines",
                           name=trace_name(f"util {name}"), legend=_legend(rows, "device utilisation (%)"),
                           line={"width": 1.5}, row=row, col=1)
    meaning = ("NVML: share of time any kernel ran, not SM occupancy" if sources == {"nvml"}
               else "CPU busy percent (no GPU)" if sources == {"cpu"}
               else f"sources: {', '.join(sorted(sources))}")
    return f"Device utilisation from {len(device):,} samples ({meaning})."


def _add_clock(figure, view: RunView, rows: list[str]) -> str:
    """The SM clock per device, and markers on it where most readings of a bin said the
    board's power limit held the clock down."""
    row = rows.index(CLOCK_ROW) + 1
    capped_readings = known = 0
    for name, samples in view.run.device.groupby("device", sort=True, dropna=False):
        # True / False / None -> 1 / 0 / NaN (None: not reported)
        capped = pd.to_numeric(samples["power_capped"].astype(object), errors="coerce").to_numpy(np.float64)
        capped_readings += int((capped > 0.5).sum())
        known += int(np.isfinite(capped).sum())
        x, means, _ = bin_means(_numeric(samples, "t_ns"), {"clock": _numeric(samples, "sm_clock_mhz"),
                                                            "capped": capped})
        figure.add_scatter(x=compact(x), y=compact(means["clock"]), mode="lines",
                           name=trace_name(f"SM clock {name}"), legend=_legend(rows, CLOCK_ROW),
                           line={"width": 1.5}, row=row, col=1)
        at_cap = means["capped"] > 0.5  # NaN (not reported) compares False
        if at_cap.any():
            figure.add_scatter(x=compact(x[at_cap]), y=compact(means["clock"][at_cap]), mode="markers",
                               name=trace_name(f"power-capped {name}"), legend=_legend(rows, CLOCK_ROW),
                               marker={"color": "#ef553b", "size": 4}, row=row, col=1)
    if not known:
        return "SM clock (the power limit's hold on it not reported)."
    return f"SM clock: {capped_readings:,} of {known:,} readings with the power limit holding it down (marked)."


def run_figure(view: RunView) -> tuple[Figure | None, list[str]]:
    """The run's timeline, or None with notes saying what it lacks."""
    rows = _rows(view)
    missing = []
    if not len(view.run.steps):
        missing.append("no step stats (this engine cannot see its own steps)")
    if "device utilisation (%)" not in rows:
        missing.append("no device samples")
    if not rows:
        return None, missing
    figure = make_subplots(rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=0.07,
                           subplot_titles=rows)
    parts = []
    if len(view.run.steps):
        parts.append(_add_steps(figure, view, rows))
    if "device utilisation (%)" in rows:
        parts.append(_add_device(figure, view, rows))
    if CLOCK_ROW in rows:
        parts.append(_add_clock(figure, view, rows))
    figure.update_layout(
        title={"text": trace_name(f"Timeline: {view.name}"), "x": 0.01, "font": {"size": 15}},
        height=90 + 190 * len(rows), margin={"l": 64, "r": 16, "t": 64, "b": 40},
        hovermode="x unified",
    )
    for n in range(1, len(rows) + 1):
        top = figure.layout[f"yaxis{'' if n == 1 else n}"].domain[1]
        figure.update_layout({("legend" if n == 1 else f"legend{n}"): {
            "x": 1.01, "xanchor": "left", "y": top, "yanchor": "top", "traceorder": "reversed"
            if rows[n - 1] == "tokens per step" else "normal", "font": {"size": 11}}})
    figure.update_xaxes(title_text="time since run start (s)", row=len(rows), col=1)
    return Figure(figure, " ".join(parts + [m[0].upper() + m[1:] + "." for m in missing])), missing


def section(views: list[RunView]) -> Section:
    out = Section("timelines", "Timelines")
    out.add(note(
        "Per run, over time: requests running (holding KV memory) and queued inside the engine; "
        "the tokens each step computed, stacked: useful prefill and decode at the bottom, padding "
        "and decode for already-finished rows (wasted) on top; KV positions holding real context "
        "(used) against those set aside (reserved) and the cache's size (capacity); device "
        "utilisation; and the GPU's SM clock, marked where the board's power limit held it down "
        "(compute-bound work then runs below the roofline's matrix rate). A static batch shows as a saw-tooth of running requests; continuous "
        "batching as a flat line at the batch limit while a queue remains."))
    for view in views:
        figure, missing = run_figure(view)
        if figure is None:
            out.add(note(f"{view.name}: no timeline: {' and '.join(missing)}."))
        else:
            out.add(figure)
    return out
