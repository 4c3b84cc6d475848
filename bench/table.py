"""The terminal table of a comparison: one row per run, units in the headers.

Failure counts sit next to the latency numbers (METRICS.md): a run that dropped requests is
never shown as a clean run, and a run that did not complete says so beside its name.
"""

from __future__ import annotations

import math

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bench.results import RunResult

MAX_LABEL = 20  # characters of a run's name on one line in the tall layout (longer ones fold)

# (header, how to get the value from a summary, how to show it)
COLUMNS = [
    ("ok", ("counts", "ok"), "int"),
    ("error", ("counts", "error"), "int"),
    ("timeout", ("counts", "timeout"), "int"),
    ("rejected", ("counts", "rejected"), "int"),
    ("out tok/s", ("output_tok_per_s",), "rate"),
    ("total tok/s", ("total_tok_per_s",), "rate"),
    ("TTFT p50 ms", ("ttft_ms", "p50"), "ms"),
    ("TTFT p99 ms", ("ttft_ms", "p99"), "ms"),
    ("TPOT p50 ms", ("tpot_ms", "p50"), "ms"),
    ("TPOT p99 ms", ("tpot_ms", "p99"), "ms"),
    ("E2E p50 ms", ("e2e_ms", "p50"), "ms"),
    ("pad eff %", ("engine", "padding_efficiency"), "pct"),
    ("preempt", ("engine", "preemptions"), "int"),
    ("roofline %", ("roofline", "efficiency"), "pct"),
    # the roofline's two factors (docs/metrics.md): what the engine's steps allow, and how
    # close it came to them; empty for peers, whose steps are not seen
    ("schedule %", ("roofline", "steps_bound", "schedule_efficiency"), "pct"),
    ("in-step %", ("roofline", "steps_bound", "efficiency"), "pct"),
]


def _get(summary: dict, path: tuple[str, ...]):
    value = summary
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _show(value, kind: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "pct":
        return f"{100 * value:.1f}"
    if kind == "rate":
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}"
    return f"{value:,.1f}" if abs(value) >= 10 else f"{value:.2f}"  # ms


def run_name(run: RunResult) -> str:
    status = run.manifest.get("run", {}).get("status", "complete")
    return run.label if status == "complete" else f"{run.label} [{status}]"


def table_rows(runs: list[RunResult]) -> list[dict[str, str]]:
    """The table as plain strings, header -> cell (what the terminal shows)."""
    rows = []
    for run in runs:
        row = {"run": run_name(run), "workload": run.manifest.get("workload", {}).get("name", "?")}
        sweep = run.manifest.get("sweep")
        if sweep:
            row["workload"] += f" {sweep['variable']}={sweep['value']:g}"
        for header, path, kind in COLUMNS:
            row[header] = _show(_get(run.summary, path), kind)
        rows.append(row)
    return rows


def _wide_table(rows: list[dict[str, str]], title: str | None) -> Table:
    table = Table(title=title, header_style="bold")
    for i, header in enumerate(rows[0]):
        table.add_column(header, justify="left" if i < 2 else "right", no_wrap=i >= 2)
    for row in rows:
        table.add_row(*(Text(v) for v in row.values()))  # Text: a label's [..] is not markup
    return table


def _tall_table(rows: list[dict[str, str]], title: str | None, widths: list[int]) -> Table:
    """Metrics down, runs across: what fits a narrow terminal."""
    table = Table(title=title, header_style="bold")
    table.add_column("metric")
    for row, w in zip(rows, widths):
        table.add_column(Text(f"{row['run']}\n{row['workload']}"), justify="right", overflow="fold", width=w)
    for header in list(rows[0])[2:]:
        table.add_row(header, *(Text(row[header]) for row in rows))
    return table


def _tall_tables(rows: list[dict[str, str]], title: str | None, width: int) -> list[Table]:
    """As many runs side by side as fit in `width`, then the next table: twenty runs in 80
    columns would otherwise be squeezed into one character each."""
    metric = max(len(h) for h in list(rows[0])[2:]) + 4  # column, borders and padding
    # a run's column: its widest number and its whole name, or when that does not fit, its
    # name up to MAX_LABEL characters
    numbers = [max(8, *(len(r[h]) for h in list(r)[2:])) for r in rows]
    widths = [max(n, len(r["run"])) for n, r in zip(numbers, rows)]
    if metric + sum(w + 3 for w in widths) > width:
        widths = [max(n, min(len(r["run"]), MAX_LABEL)) for n, r in zip(numbers, rows)]
    chunks, start, used = [], 0, metric
    for i, w in enumerate(widths):
        if i > start and used + w + 3 > width:
            chunks.append((start, i))
            start, used = i, metric
        used += w + 3
    chunks.append((start, len(rows)))
    if len(chunks) == 1:
        return [_tall_table(rows, title, widths)]
    return [_tall_table(rows[a:b], f"{title or 'runs'} ({a + 1}-{b} of {len(rows)})", widths[a:b])
            for a, b in chunks]


def _wide_width(rows: list[dict[str, str]]) -> int:
    """Columns of the wide layout, borders and padding included: the run and workload columns
    may wrap at spaces (their longest word), the numbers do not (their header whole)."""
    def width(i: int, header: str) -> int:
        head = max(len(w) for w in header.split()) if i < 2 else len(header)
        return max(head, *(len(r[header]) for r in rows)) + 3

    return sum(width(i, header) for i, header in enumerate(rows[0])) + 1


def results_tables(runs: list[RunResult], title: str | None = None, width: int = 200) -> list[Table]:
    """One row per run when that fits in `width` columns, else one column per run (in as
    many tables as it takes)."""
    rows = table_rows(runs)
    if not rows:
        return [Table(title=title)]
    if _wide_width(rows) <= width:
        return [_wide_table(rows, title)]
    return _tall_tables(rows, title, width)


def print_table(runs: list[RunResult], console: Console | None = None, title: str | None = None) -> None:
    console = console or Console()
    for table in results_tables(runs, title, width=console.width):
        console.print(table)


def say(console: Console, text: str) -> None:
    """One line as is: no markup, no highlighting, no wrapping (paths stay copyable)."""
    console.print(text, markup=False, highlight=False, soft_wrap=True)
