"""Throughput and goodput bars: one bar per run, grouped by workload.

Sweep points are left to the sweep curves: twenty bars of one engine at twenty rates say
less than one curve.
"""

from __future__ import annotations

from reports.figstyle import new_figure, trace_name
from reports.html import fmt_num, note
from reports.page import Figure, Grid, Section
from reports.runs import RunView


def _bars(views: list[RunView], title: str, y_title: str, key: str, caption: str) -> Figure:
    figure = new_figure(title, "workload", y_title)
    for v in views:
        value = v.number(key)
        figure.add_bar(
            x=[trace_name(v.workload)], y=[value], name=trace_name(v.name),
            marker_color=v.color, text=["n/a" if value is None else fmt_num(value)],
            textposition="outside", cliponaxis=False,
            hovertemplate=f"{trace_name(v.name)}<br>%{{y:.4g}} {y_title}<extra></extra>",
        )
    figure.update_layout(barmode="group")
    return Figure(figure, caption)


def section(views: list[RunView]) -> Section:
    out = Section("throughput", "Throughput and goodput")
    bars = [v for v in views if v.sweep is None]
    if not bars:
        return out.add(note("Every run is a sweep point: see the throughput-latency curves."))
    out.add(note(
        "Higher is better. Throughput counts ok requests only, over W (first send to last "
        "token). Goodput counts only the ok requests that met every SLO; a gap between the "
        "request rate and the goodput bar is the requests that were served too slowly."))
    figures = [
        _bars(bars, "Output throughput", "output tok/s", "output_tok_per_s",
              "Generated tokens per second of ok requests."),
        _bars(bars, "Total throughput", "tok/s", "total_tok_per_s",
              "Prompt and generated tokens per second of ok requests."),
        _bars(bars, "Request throughput", "requests/s", "request_per_s", "Ok requests per second."),
    ]
    with_slo = [v for v in bars if v.number("goodput_req_per_s") is not None]
    if with_slo:
        figures.append(_bars(with_slo, "Goodput", "good requests/s", "goodput_req_per_s",
                             "Ok requests per second that met every SLO given."))
    else:
        out.add(note("No run was given an SLO, so there is no goodput to show."))
    out.add(Grid(figures))
    return out
