"""CDFs of TTFT, TPOT, ITL and E2E: one line per run.

A CDF needs no more points than the eye can tell apart: above MAX_POINTS values a line is
drawn through MAX_POINTS evenly spaced quantiles (linear interpolation, like the summary's
percentiles), so a run of 100k requests (millions of ITL gaps) costs the page the same as one
of a thousand.
"""

from __future__ import annotations

import numpy as np

from reports.figstyle import add_buttons, axis_type_buttons, compact, new_figure, trace_name
from reports.html import note
from reports.page import Figure, Grid, Section
from reports.runs import RunView
from reports.samples import latency_samples

MAX_POINTS = 1000
TITLES = {
    "ttft_ms": ("TTFT", "time to first token: send to first token"),
    "tpot_ms": ("TPOT", "time per output token after the first, one value per request"),
    "itl_ms": ("ITL", "every gap between consecutive tokens, all requests pooled"),
    "e2e_ms": ("E2E latency", "send to last token"),
}


def cdf_points(values: np.ndarray, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """(x, F(x)): every sorted value with its empirical CDF (i+1)/n when there are few,
    else max_points quantiles at evenly spaced probabilities from 0 to 1."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return np.empty(0), np.empty(0)
    if n <= max_points:
        return np.sort(values), np.arange(1, n + 1) / n
    probabilities = np.linspace(0.0, 1.0, max_points)
    return np.quantile(values, probabilities), probabilities


def section(views: list[RunView]) -> Section:
    out = Section("latency", "Latency distributions")
    out.add(note(
        "Each line is one run; read a percentile off the y axis (0.5 = median, 0.99 = p99). "
        "A line further left is faster; a long flat tail on the right is the slow requests "
        "that averages hide. Over ok requests only. Switch the x axis to log when engines differ "
        "by orders of magnitude."))
    samples = [latency_samples(v.run.requests) for v in views]
    figures = []
    for metric, (title, meaning) in TITLES.items():
        figure = new_figure(f"{title} (ms)", f"{title} (ms)", "fraction of values ≤ x")
        empty = []
        for view, values in zip(views, samples):
            x, y = cdf_points(values[metric])
            if not len(x):
                empty.append(view.name)
                continue
            figure.add_scatter(
                x=compact(x), y=compact(y), mode="lines", name=trace_name(view.name),
                line={"color": view.color, "width": 2}, legendgroup=trace_name(view.name),
                hovertemplate=f"{trace_name(view.name)}<br>%{{x:.4g}} ms<br>F = %{{y:.3f}}<extra></extra>",
            )
        add_buttons(figure, axis_type_buttons("xaxis"))
        figure.update_yaxes(range=[0, 1.02])
        caption = f"{title}: {meaning}."
        if empty:
            caption += f" No values for {', '.join(empty)}."
        figures.append(Figure(figure, caption))
    out.add(Grid(figures))
    return out
