"""Azure LLM inference trace 2023 (Patel et al., Splitwise, ISCA 2024).

CSV columns TIMESTAMP, ContextTokens (prompt), GeneratedTokens (output). TIMESTAMP is a
wall-clock datetime with 7 fractional digits (100 ns ticks), e.g. 2023-11-16 18:17:03.9799600,
which `datetime.strptime("%f")` rejects: the fraction is parsed separately.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

from workloads.draft import Draft
from workloads.errors import WorkloadError
from workloads.tables import parse_length, read_rows
from workloads.traces.select import ReplayOptions, TraceRow, select_rows

TIME, PROMPT, OUTPUT = "TIMESTAMP", "ContextTokens", "GeneratedTokens"


def parse_timestamp(value: str, path: Path, lineno: int) -> tuple[datetime, float]:
    """'2023-11-16 18:17:03.9799600' -> (datetime to the second, 0.97996)."""
    whole, _, fraction = value.strip().partition(".")
    try:
        if fraction and not fraction.isdigit():
            raise ValueError
        return datetime.fromisoformat(whole), float(f"0.{fraction or 0}")
    except ValueError:
        raise WorkloadError(
            f"{path}:{lineno}: column {TIME!r}: got {value!r}, expected a datetime like "
            "'2023-11-16 18:17:03.9799600'"
        ) from None


def _rows(path: Path) -> Iterator[TraceRow]:
    first = None
    for lineno, row in read_rows(path, [TIME, PROMPT, OUTPUT]):
        moment, fraction = parse_timestamp(row[TIME], path, lineno)
        first = moment if first is None else first
        # Whole seconds from the first row plus the fraction: exact to the 100 ns tick,
        # where seconds since an epoch in a float would round it.
        t_s = (moment - first).total_seconds() + fraction
        yield TraceRow(
            lineno,
            t_s,
            parse_length(row[PROMPT], path, lineno, PROMPT),
            parse_length(row[OUTPUT], path, lineno, OUTPUT),
            t_raw=row[TIME],
        )


def load_azure(path: Path, opts: ReplayOptions) -> Draft:
    return select_rows(_rows(path), path, TIME, opts)
