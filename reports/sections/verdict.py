"""The verdict the report was given, if any: regression (bench compare --baseline) or A/B
(--versus). Its Markdown summary as written for CI logs, and its rows as a table."""

from __future__ import annotations

from reports.html import Html, fmt_num, note, table, tag
from reports.page import Section

# marks that colour a row; any other mark leaves it plain
ROW_CLASSES = {"worse": "worse", "regression": "worse", "better": "better", "within threshold": "within"}


def _cell(value) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return "–" if value is None else str(value)
    if isinstance(value, (int, float)):
        return fmt_num(value, digits=4)
    return str(value)


def _row_class(row: dict) -> str | None:
    for value in row.values():
        if isinstance(value, str) and value.strip().lower() in ROW_CLASSES:
            return ROW_CLASSES[value.strip().lower()]
    return None


def check(verdict) -> None:
    if not isinstance(verdict, dict):
        raise TypeError(f"verdict: expected a dict {{markdown, rows}}, got {type(verdict).__name__}")
    if not isinstance(verdict.get("markdown", ""), str):
        raise TypeError(f"verdict['markdown']: expected a string, got {type(verdict['markdown']).__name__}")
    if not isinstance(verdict.get("title", ""), str):
        raise TypeError(f"verdict['title']: expected a string, got {type(verdict['title']).__name__}")
    rows = verdict.get("rows", [])
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise TypeError("verdict['rows']: expected a list of dicts (one per label and metric)")


def section(verdict: dict) -> Section:
    check(verdict)
    out = Section("verdict", verdict.get("title") or "Regression verdict")
    rows = verdict.get("rows") or []
    if rows:
        columns: list[str] = []
        for row in rows:
            columns += [k for k in row if k not in columns]
        cells = [[_cell(row.get(c)) for c in columns] for row in rows]
        out.add(tag("div", table(columns, cells, row_classes=[_row_class(r) for r in rows]), class_="scroll"))
    else:
        out.add(note("The verdict has no rows."))
    if verdict.get("markdown"):
        out.add(tag("details", Html(tag("summary", "as Markdown (for CI logs and pull requests)")
                                    + tag("pre", verdict["markdown"])), open=""))
    return out
