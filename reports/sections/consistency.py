"""Output consistency: did the engines generate the same tokens as the reference engine on
the same greedy workload? Batching should change speed, never the output; a few differing
tokens are expected from floating-point reduction order, whole requests diverging are not."""

from __future__ import annotations

from reports.html import esc, fmt_num, fmt_pct, join, note, table, tag
from reports.page import Section
from reports.runs import RunView

MAX_MISMATCHES = 3


MAX_TEXT = 160


def _mismatch(item) -> str:
    """bench.consistency's {request_id, position, reference_token, token} as a sentence;
    anything else as key=value pairs."""
    if isinstance(item, dict) and {"request_id", "position"} <= item.keys():
        def show(token):
            return "ended" if token is None else token
        text = (f"{item['request_id']} at token {item['position']}: reference "
                f"{show(item.get('reference_token'))}, this run {show(item.get('token'))}")
    elif isinstance(item, dict):
        text = ", ".join(f"{k}={v}" for k, v in item.items())
    else:
        text = str(item)
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + "…"


def _skipped(block: dict) -> str:
    skipped = block.get("requests_skipped")
    if isinstance(skipped, dict):
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in skipped.items() if v) or "none"
    return "–" if skipped is None else str(skipped)


def section(views: list[RunView]) -> Section:
    out = Section("consistency", "Output consistency")
    out.add(note(
        "Requests compared: ok on both sides with their token ids kept (skipped: the rest, and "
        "why). Equal: identical output. Token agreement: positions where both outputs hold the "
        "same token, over the positions of the longer one (a missing or extra token disagrees). "
        "Greedy decoding should make every engine agree; differences late in a sequence can come "
        "from floating-point summation order."))
    rows, without = [], []
    for v in views:
        c = v.block("consistency")
        if c is None:
            without.append(v.name)
            continue
        if c.get("is_reference"):
            rows.append([v.name, "this run", "–", "–", "–", "–", "–", "the reference"])
            continue
        compared, equal = v.number("consistency", "requests_compared"), v.number("consistency", "requests_equal")
        mismatches = c.get("first_mismatches") or []
        shown = join(tag("div", _mismatch(m)) for m in mismatches[:MAX_MISMATCHES])
        if len(mismatches) > MAX_MISMATCHES:
            shown = join([shown, tag("div", f"… {len(mismatches) - MAX_MISMATCHES} more")])
        rows.append([v.name, str(c.get("reference") or "–"), fmt_num(compared), fmt_num(equal),
                     fmt_pct(equal / compared if compared and equal is not None else None),
                     fmt_pct(v.number("consistency", "token_agreement")), _skipped(c), shown or esc("none")])
    if rows:
        headers = ["run", "reference", "requests compared", "equal", "equal share",
                   "token agreement", "skipped", "first mismatches"]
        out.add(tag("div", table(headers, rows, class_="data kv"), class_="scroll"))
    if without:
        out.add(note(f"Not compared: {', '.join(without)} (bench compare fills this in when several "
                     "engines ran the same greedy workload)."))
    return out
