"""Where each in-repo run's time went, phase by phase (bench.metrics.phases), beside the bound
of the same steps: prompt steps, then decode-only steps by how many requests they decode. The
roofline section shows it under its own figure."""

from __future__ import annotations

from bench.metrics.phases import PHASES
from reports.figstyle import new_figure, trace_name
from reports.html import fmt_num, fmt_pct, note, table, tag
from reports.page import Figure
from reports.runs import RunView

# one colour per phase, dark for prompt steps, lighter as the batch drains
PHASE_COLORS = ["#3b4f7a", "#4e79a7", "#76a5d1", "#a9c9e8", "#d6e6f5"]


def _phases(view: RunView) -> list[dict]:
    own = (view.block("roofline") or {}).get("steps_bound") or {}
    return own.get("phases") or []


def phase_content(views: list[RunView]) -> list:
    """The figure, a table and a note on where the times came from; [] when no run has phases
    (peers, summaries from before them)."""
    with_phases = [v for v in views if _phases(v)]
    if not with_phases:
        return []
    names = [n for v in with_phases for n in (trace_name(v.name), trace_name(v.name))]
    kinds = [k for _ in with_phases for k in ("measured", "bound")]
    present = {p["phase"] for v in with_phases for p in _phases(v)}
    order = [name for name, _ in PHASES if name in present]
    figure = new_figure("Where the time went, phase by phase", "run", "seconds", height=420)
    for phase, color in zip(order, PHASE_COLORS):
        values = []
        for v in with_phases:
            row = next((p for p in _phases(v) if p["phase"] == phase), None)
            values += [None, None] if row is None else [row["time_s"], row["bound_s"]]
        figure.add_bar(x=[names, kinds], y=values, name=phase, marker_color=color)
    figure.update_layout(barmode="stack", legend={"traceorder": "normal"})  # prompt steps first
    rows = []
    for v in with_phases:
        for p in _phases(v):
            rows.append([v.name, p["phase"], fmt_num(p["steps"]), fmt_num(p["positions"]),
                         fmt_num(p["time_s"]), fmt_num(p["bound_s"]),
                         fmt_pct(p["bound_s"] / p["time_s"] if p["bound_s"] and p["time_s"] else None)])
    sources = {((v.block("roofline") or {}).get("steps_bound") or {}).get("time_source") for v in with_phases}
    if sources == {"device"}:
        timing = ("Step times: each step's time on the device (CUDA events, from a marker queued as "
                  "the host starts launching it to its tokens); the device's idle time before the "
                  "host begins a step is in no phase.")
    else:
        timing = ("Step times: intervals between the steps' tokens reaching the host where no device "
                  "times were recorded (a CPU, older files); a step that blocks the host while it "
                  "runs can lend part of its time to its neighbour.")
    return [
        Figure(figure, "For each run, its steps' time (left bar) and their bound (right bar), stacked "
                       "by phase. The phase whose two pieces differ most is where kernels and host "
                       "lose the most time."),
        tag("div", table(["run", "phase", "steps", "positions", "time s", "bound s", "in-step"], rows),
            class_="scroll"),
        note(timing),
    ]
