"""Roofline efficiency: how close each run came to the fastest any engine could serve its
workload on this device (METRICS.md): T_min = max(FLOPs / F, bytes / BW) against the measured
run time. It is a bound, not a promise; the distance to it is the honest single number."""

from __future__ import annotations

from reports.figstyle import new_figure, trace_name
from reports.html import fmt_num, fmt_pct, note, table, tag
from reports.page import Figure, Section
from reports.runs import RunView
from reports.sections.phases import phase_content


def measured_s(view: RunView) -> float | None:
    """The run time the efficiency was computed against: T_min / efficiency, else W."""
    t_min, efficiency = view.number("roofline", "t_min_s"), view.number("roofline", "efficiency")
    if t_min is not None and efficiency:
        return t_min / efficiency
    return view.number("duration_s")


def section(views: list[RunView]) -> Section:
    out = Section("roofline", "Roofline efficiency")
    out.add(note(
        "T_min is a lower bound on the run time of this workload on this device: the larger of "
        "its FLOPs over the measured matrix rate and its bytes (weights read once per decode "
        "step of the longest request, K/V read and written) over the measured memory bandwidth. "
        "Efficiency = T_min / measured time; no engine reaches 100 %. For the in-repo engines, "
        "the bound of their own steps (each step bounded alone, then summed) splits it in two: "
        "schedule = T_min / steps' bound (what the chosen steps allow: a draining batch's last "
        "steps read every weight for a few tokens) and in-step = steps' bound / measured time "
        "(how close kernels and host came to those steps); roofline = schedule x in-step."))
    with_bound = [v for v in views if v.block("roofline") is not None]
    without = [v.name for v in views if v.block("roofline") is None]
    if with_bound:
        figure = new_figure("Lower bound vs measured run time", "run", "seconds")
        names = [trace_name(v.name) for v in with_bound]
        figure.add_bar(x=names, y=[v.number("roofline", "t_min_s") for v in with_bound],
                       name="T_min (lower bound)", marker_color="#9aa3b5")
        own = [v.number("roofline", "steps_bound", "t_min_s") for v in with_bound]
        if any(t is not None for t in own):
            figure.add_bar(x=names, y=own, name="bound of its own steps", marker_color="#c9ced9",
                           text=[fmt_pct(v.number("roofline", "steps_bound", "schedule_efficiency"))
                                 for v in with_bound], textposition="outside", cliponaxis=False)
        figure.add_bar(x=names, y=[measured_s(v) for v in with_bound], name="measured",
                       marker_color=[v.color for v in with_bound],
                       text=[fmt_pct(v.number("roofline", "efficiency")) for v in with_bound],
                       textposition="outside", cliponaxis=False)
        figure.update_layout(barmode="group")
        out.add(Figure(figure, "Dark grey: the bound; light grey: the bound of the engine's own "
                               "steps, labelled with the schedule efficiency; coloured: the measured "
                               "time, labelled with the efficiency. The closer the bars, the better."))
        rows = []
        for v in with_bound:
            ceilings = (v.block("roofline") or {}).get("ceilings") or {}
            bw, flops = v.number("roofline", "ceilings", "bw_bytes_per_s"), \
                v.number("roofline", "ceilings", "flops_per_s")
            rows.append([
                v.name, fmt_num(v.number("roofline", "t_min_s")), fmt_num(measured_s(v)),
                fmt_pct(v.number("roofline", "efficiency")),
                fmt_num(v.number("roofline", "steps_bound", "t_min_s")),
                fmt_pct(v.number("roofline", "steps_bound", "schedule_efficiency")),
                fmt_pct(v.number("roofline", "steps_bound", "efficiency")),
                str((v.block("roofline") or {}).get("bound") or "–"),
                fmt_num(None if v.number("roofline", "flops") is None else v.number("roofline", "flops") / 1e12),
                fmt_num(None if v.number("roofline", "bytes") is None else v.number("roofline", "bytes") / 1e9),
                fmt_num(None if bw is None else bw / 1e9), fmt_num(None if flops is None else flops / 1e12),
                str(ceilings.get("source") or "–"),
            ])
        headers = ["run", "T_min s", "measured s", "efficiency", "steps' bound s", "schedule", "in-step",
                   "bound", "TFLOP", "GB moved",
                   "ceiling BW GB/s", "ceiling TFLOP/s", "ceilings source"]
        out.add(tag("div", table(headers, rows), class_="scroll"))
        for piece in phase_content(with_bound):
            out.add(piece)
    if without:
        out.add(note(f"No roofline for {', '.join(without)}: it needs an offline workload, a known "
                     "model shape and measured device ceilings."))
    return out
