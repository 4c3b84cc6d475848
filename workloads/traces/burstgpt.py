"""BurstGPT (Wang et al., KDD 2025): ChatGPT and GPT-4 traffic served on Azure.

CSV with at least Timestamp (integer seconds from 0:00 of the first day), Request tokens,
Response tokens. Later releases insert columns (Session ID, Elapsed time), so columns are read
by name. Rows with 0 request and 0 response tokens are failed requests: they are dropped, and
the notes say how many.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from workloads.draft import Draft
from workloads.tables import parse_length, parse_time, read_rows
from workloads.traces.select import ReplayOptions, TraceRow, select_rows

TIME, PROMPT, OUTPUT = "Timestamp", "Request tokens", "Response tokens"


def _rows(path: Path) -> Iterator[TraceRow]:
    for lineno, row in read_rows(path, [TIME, PROMPT, OUTPUT]):
        yield TraceRow(
            lineno,
            parse_time(row[TIME], path, lineno, TIME),
            parse_length(row[PROMPT], path, lineno, PROMPT),
            parse_length(row[OUTPUT], path, lineno, OUTPUT),
            t_raw=row[TIME],
        )


def _failed(row: TraceRow) -> bool:
    return row.prompt_len == 0 and row.output_len == 0


def load_burstgpt(path: Path, opts: ReplayOptions) -> Draft:
    return select_rows(
        _rows(path), path, TIME, opts,
        drop=_failed, drop_reason="0 request and 0 response tokens: failed requests",
    )
