"""Any CSV or JSON-lines trace, with the columns named by the user.

prompt_column and output_column are required; arrival_column is optional (without it the
trace is lengths only, and arrivals come from an arrival process); time_unit says whether the
arrival column is in seconds ("s") or milliseconds ("ms"). The format follows the extension:
.csv, or .jsonl / .ndjson.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from workloads.draft import Draft
from workloads.tables import parse_length, parse_time, read_rows
from workloads.traces.select import ReplayOptions, TraceRow, select_rows

TIME_UNITS = {"s": 1.0, "ms": 1e-3}


def _rows(path: Path, prompt: str, output: str, arrival: str | None, unit: float) -> Iterator[TraceRow]:
    columns = [prompt, output] + ([arrival] if arrival else [])
    for lineno, row in read_rows(path, columns):
        yield TraceRow(
            lineno,
            None if arrival is None else parse_time(row[arrival], path, lineno, arrival) * unit,
            parse_length(row[prompt], path, lineno, prompt),
            parse_length(row[output], path, lineno, output),
            t_raw="" if arrival is None else str(row[arrival]),
        )


def load_generic(
    path: Path,
    opts: ReplayOptions,
    *,
    prompt_column: str,
    output_column: str,
    arrival_column: str | None = None,
    time_unit: str = "s",
) -> Draft:
    rows = _rows(path, prompt_column, output_column, arrival_column, TIME_UNITS[time_unit])
    return select_rows(rows, path, arrival_column or "", opts)
