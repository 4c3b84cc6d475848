"""Throughput-latency curves from sweeps: the runs of one (label, sweep name) as one curve.

Each point is one run at one offered rate or concurrency; x is what it achieved (output tok/s,
or ok requests/s with the switch above the figure), y the latency it paid. The knee of a curve
is where an engine saturates: more offered load buys no more throughput, only more latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from reports.figstyle import add_buttons, new_figure, trace_name
from reports.html import note
from reports.page import Figure, Grid, Section
from reports.runs import PALETTE, RunView

X_AXES = (("output_tok_per_s", "achieved output tok/s"), ("request_per_s", "achieved requests/s"))
DASH = {"p50": "solid", "p99": "dash"}


@dataclass
class Curve:
    label: str
    sweep: str
    variable: str
    points: list[RunView]  # sorted by the swept value

    @property
    def name(self) -> str:
        return f"{self.label} · {self.sweep}"


def curves(views: list[RunView]) -> list[Curve]:
    groups: dict[tuple[str, str], list[RunView]] = {}
    for v in views:
        if v.sweep is not None:
            groups.setdefault((v.label, v.sweep.name), []).append(v)
    out = []
    for (label, sweep), members in groups.items():
        members.sort(key=lambda v: v.sweep.value)
        out.append(Curve(label, sweep, members[0].sweep.variable, members))
    return out


def _figure(all_curves: list[Curve], metric: str, title: str) -> Figure:
    figure = new_figure(f"{title} vs achieved throughput", X_AXES[0][1], f"{title} (ms)", height=420)
    # x of every trace under each choice of axis, for the switch (plain lists: plotly.js
    # restyles with them as given)
    xs = {key: [] for key, _ in X_AXES}
    for i, curve in enumerate(all_curves):
        points = [v for v in curve.points if v.number("output_tok_per_s") is not None]
        color = PALETTE[i % len(PALETTE)]
        for p in ("p50", "p99"):
            for key, _ in X_AXES:
                xs[key].append([v.number(key) for v in points])
            figure.add_scatter(
                x=xs[X_AXES[0][0]][-1], y=[v.number(metric, p) for v in points],
                mode="lines+markers", name=trace_name(f"{curve.name} {p}"),
                line={"color": color, "dash": DASH[p]}, legendgroup=trace_name(curve.name),
                text=[trace_name(f"{curve.variable}={v.sweep.value:g}") for v in points],
                hovertemplate=f"{trace_name(curve.name)} {p}<br>%{{text}}<br>x = %{{x:.4g}}"
                              f"<br>{title} = %{{y:.4g}} ms<extra></extra>",
            )
    add_buttons(figure, [
        {"label": axis_title, "method": "update", "args": [{"x": xs[key]}, {"xaxis.title.text": axis_title}]}
        for key, axis_title in X_AXES
    ])
    return Figure(figure, f"{title} p50 (solid) and p99 (dashed) at each sweep point; "
                          "hover a point for the offered rate or concurrency.")


def section(views: list[RunView]) -> Section | None:
    found = curves(views)
    if not found:
        return None
    out = Section("sweeps", "Throughput vs latency (sweeps)")
    out.add(note(
        "One curve per engine and sweep; each point is a run at one offered request rate or "
        "concurrency. Down and to the right is better. Where a curve turns upward the engine "
        "has saturated: more load buys latency, not throughput."))
    failed = [v.name for c in found for v in c.points if v.number("output_tok_per_s") is None]
    if failed:
        out.add(note(f"Left out (no ok request, so no throughput): {', '.join(failed)}."))
    out.add(Grid([_figure(found, "ttft_ms", "TTFT"), _figure(found, "tpot_ms", "TPOT")]))
    return out
