"""HTML building blocks: escaping, number formatting and tables.

Every string that came from a result file passes through `esc` before it reaches the page;
`Html` marks a string that is already safe markup, so a table can hold both without either
being escaped twice or not at all.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence

MISSING = "–"  # shown for null / not measured; never 0, which would read as a measurement


class Html(str):
    """A string of trusted markup (built here, with every file-derived part escaped)."""


def esc(value) -> Html:
    if isinstance(value, Html):
        return value
    return Html(html.escape("" if value is None else str(value), quote=True))


def join(parts: Iterable[str], sep: str = "") -> Html:
    return Html(sep.join(esc(p) for p in parts))


def tag(name: str, content="", **attrs) -> Html:
    """<name attrs>content</name>; attribute names use _ for - (data_x -> data-x), class_ -> class."""
    rendered = "".join(
        f' {k.rstrip("_").replace("_", "-")}="{esc(v)}"' for k, v in attrs.items() if v is not None
    )
    return Html(f"<{name}{rendered}>{esc(content)}</{name}>")


def is_missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_num(value, digits: int = 3) -> str:
    """A number for a table: about `digits` significant digits, thousands separated."""
    if is_missing(value):
        return MISSING
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) >= 1000):
        return f"{int(value):,}"
    magnitude = abs(value)
    if magnitude >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    if magnitude == 0:
        return "0"
    decimals = max(0, digits - 1 - math.floor(math.log10(magnitude)))
    return f"{value:,.{decimals}f}"


def fmt_pct(share, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage."""
    return MISSING if is_missing(share) else f"{100 * share:.{digits}f} %"


def fmt_bytes(value) -> str:
    if is_missing(value):
        return MISSING
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return f"{int(value)} B"


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence],
    *,
    group_headers: Sequence[tuple[str, int]] | None = None,
    row_classes: Sequence[str | None] | None = None,
    class_: str = "data",
) -> Html:
    """A table; cells are escaped unless they are Html. The first column is a row label, the
    rest are right-aligned (numbers). group_headers: (title, colspan) spanning header cells."""
    head = ""
    if group_headers:
        head += "<tr>" + "".join(
            f'<th colspan="{span}">{esc(title)}</th>' for title, span in group_headers
        ) + "</tr>"
    head += "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in headers) + "</tr>"
    body = []
    for i, row in enumerate(rows):
        cls = row_classes[i] if row_classes else None
        cells = "".join(f"<td>{esc(cell)}</td>" for cell in row)
        body.append(f'<tr class="{esc(cls)}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return Html(f'<table class="{esc(class_)}"><thead>{head}</thead><tbody>{"".join(body)}</tbody></table>')


def note(text: str, class_: str = "note") -> Html:
    return tag("p", text, class_=class_)
