"""Reading rows of CSV and JSON-lines files, with errors that point at file:line and column.

Columns are always looked up by name, never by position: trace releases add columns.
Rows are streamed, so a loader that needs the first 200 rows of a large trace reads only those.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from pathlib import Path

from workloads.errors import WorkloadError

FORMATS = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}


def table_format(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise WorkloadError(
            f"{path}: cannot tell the file format from the extension {path.suffix!r}; "
            f"expected one of {', '.join(FORMATS)}"
        )
    return fmt


def read_rows(path: Path, columns: list[str]) -> Iterator[tuple[int, dict]]:
    """Yield (line number, row) for each data row; every name in `columns` must be present."""
    fmt = table_format(path)
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            if fmt == "csv":
                yield from _csv_rows(f, path, columns)
            else:
                yield from _jsonl_rows(f, path, columns)
    except OSError as e:
        raise WorkloadError(f"{path}: cannot read the file: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise WorkloadError(f"{path}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None


def _csv_rows(f, path: Path, columns: list[str]) -> Iterator[tuple[int, dict]]:
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
        raise WorkloadError(f"{path}: empty file, expected a header line with columns {columns}")
    header = [h.strip() for h in header]
    missing = [c for c in columns if c not in header]
    if missing:
        raise WorkloadError(
            f"{path}:1: missing column(s) {', '.join(map(repr, missing))}; the header has "
            f"{', '.join(map(repr, header))}"
        )
    for values in reader:
        if not values or all(v.strip() == "" for v in values):
            continue
        if len(values) != len(header):
            raise WorkloadError(
                f"{path}:{reader.line_num}: {len(values)} fields, expected {len(header)} "
                f"as in the header"
            )
        yield reader.line_num, dict(zip(header, values))


def _jsonl_rows(f, path: Path, columns: list[str]) -> Iterator[tuple[int, dict]]:
    for lineno, line in enumerate(f, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise WorkloadError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
        if not isinstance(row, dict):
            raise WorkloadError(f"{path}:{lineno}: expected a JSON object per line, got {type(row).__name__}")
        missing = [c for c in columns if c not in row]
        if missing:
            raise WorkloadError(
                f"{path}:{lineno}: missing key(s) {', '.join(map(repr, missing))}; the row has "
                f"{', '.join(map(repr, row))}"
            )
        yield lineno, row


def _number(value, where: str) -> float:
    if isinstance(value, bool):
        raise WorkloadError(f"{where}: got {value!r}, expected a number")
    if isinstance(value, (int, float)):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError:
            raise WorkloadError(f"{where}: got {value!r}, expected a number") from None
    if not math.isfinite(number):
        raise WorkloadError(f"{where}: got {value!r}, expected a finite number")
    return number


def parse_length(value, path: Path, lineno: int, column: str) -> int:
    """A token count: a non-negative whole number ('12' and '12.0' are fine, '-3', 'x' are not)."""
    where = f"{path}:{lineno}: column {column!r}"
    number = _number(value, where)
    if number < 0 or number != int(number):
        raise WorkloadError(f"{where}: got {value!r}, expected a non-negative integer token count")
    return int(number)


def parse_time(value, path: Path, lineno: int, column: str) -> float:
    return _number(value, f"{path}:{lineno}: column {column!r}")
