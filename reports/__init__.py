"""Result directories -> plotly figures -> one self-contained HTML file."""

from reports.write import render_report, write_report

__all__ = ["render_report", "write_report"]
