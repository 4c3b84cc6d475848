"""The common look of the report's figures: size, margins, legend, axis titles with units."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from reports.html import esc


def trace_name(text: str) -> str:
    """Plotly renders a subset of HTML in names and titles: escape text taken from files."""
    return str(esc(text))


def compact(values) -> np.ndarray:
    """float32 is ample for drawing and halves the page weight of every series."""
    return np.asarray(values, dtype=np.float64).astype(np.float32)


def new_figure(title: str, x_title: str, y_title: str, *, height: int = 380) -> go.Figure:
    figure = go.Figure()
    figure.update_layout(
        title={"text": trace_name(title), "x": 0.01, "xanchor": "left", "font": {"size": 15}},
        height=height,
        margin={"l": 64, "r": 16, "t": 48, "b": 48},
        legend={"orientation": "h", "y": -0.28, "yanchor": "top", "x": 0},
        hovermode="closest",
    )
    figure.update_xaxes(title_text=x_title)
    figure.update_yaxes(title_text=y_title)
    return figure


def add_buttons(figure: go.Figure, buttons: list[dict]) -> go.Figure:
    """A row of buttons between the title and the plot, clear of plotly's own mode bar."""
    figure.update_layout(
        updatemenus=[{
            "type": "buttons", "direction": "left", "showactive": True, "buttons": buttons,
            "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom", "pad": {"b": 6},
            "font": {"size": 11},
        }],
        margin={"t": 84},
    )
    return figure


def axis_type_buttons(axis: str = "xaxis") -> list[dict]:
    """Linear / log switch: engines on one page can differ by orders of magnitude."""
    return [
        {"label": "linear", "method": "relayout", "args": [{f"{axis}.type": "linear"}]},
        {"label": "log", "method": "relayout", "args": [{f"{axis}.type": "log"}]},
    ]
