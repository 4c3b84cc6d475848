"""The verdict as Markdown, for CI logs and pull-request comments (GitHub renders the tables
and the collapsed full listing), and as display rows for the HTML report.

The headline and the first table carry the news (regressions, improvements, rows that could
not be compared; in an A/B also rows shown within threshold); every row is in the collapsed
table below, so nothing is hidden.
"""

from __future__ import annotations

import math

from bench.regression.marks import NO_SIGNIFICANT_CHANGE, WITHIN_THRESHOLD
from bench.regression.spread import Spread

HEADLINES = {
    0: "no regression",
    1: "REGRESSION",
    3: "not comparable",
}
WITHIN = (f"{WITHIN_THRESHOLD}: the CI excludes a change past the threshold in the bad direction, "
          f"i.e. shown no worse than the threshold.")
COLUMNS = ("engine · workload", "metric", "baseline", "current", "change", "CI", "p", "threshold", "mark", "note")


def _number(value: float | None, unit: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if unit in ("tokens", "steps", "slot-steps", "preemptions", "requests"):
        return f"{value:,.0f}"
    magnitude = abs(value)
    if magnitude >= 100:
        text = f"{value:,.0f}"
    elif magnitude >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip()


def _percent(x: float) -> str:
    return "+∞" if x == math.inf else "−∞" if x == -math.inf else f"{x * 100:+.1f}%"


def _change(row) -> str:
    if row.change is None:
        return "–"
    if row.kind == "counter":
        diff = row.current - row.baseline
        if diff == 0:
            return "0"
        return f"{diff:+,.0f}" + (f" ({_percent(row.change)})" if math.isfinite(row.change) else "")
    return _percent(row.change)


def _ci(row) -> str:
    if not row.ci or any(math.isnan(x) for x in row.ci):
        return "–"
    return f"[{_percent(row.ci[0])}, {_percent(row.ci[1])}]"


def _p(row) -> str:
    if row.kind == "counter" and row.change is not None:
        return "exact"
    if row.p_value is None:
        return "–"
    return "<0.001" if row.p_value < 0.001 else f"{row.p_value:.3f}"


def _threshold(row) -> str:
    return "exact" if row.threshold == 0 else f"{row.threshold * 100:g}%"


def _mark(row) -> str:
    return f"**{row.mark}**" if row.regression else row.mark


def display_row(row) -> dict:
    """One verdict row as display strings, keyed by column name (the HTML report's table)."""
    return {
        "engine · workload": f"{row.label} · {row.workload}",
        "metric": row.metric,
        "baseline": _number(row.baseline, row.unit),
        "current": _number(row.current, row.unit),
        "change": _change(row),
        "CI": _ci(row),
        "p": _p(row),
        "threshold": _threshold(row),
        "mark": row.mark,
        "note": row.note,
    }


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(rows) -> list[str]:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        cells = display_row(row)
        cells["mark"] = _mark(row)
        lines.append("| " + " | ".join(_cell(cells[c]) for c in COLUMNS) + " |")
    return lines


def _spread_cells(s: Spread) -> str:
    cv = "–" if s.cv is None else f"{s.cv * 100:.1f}%"
    return f"{s.n} | {_number(s.min)} | {_number(s.median)} | {_number(s.max)} | {cv}"


def _spreads(verdict) -> list[str]:
    if not any(b.n > 1 or c.n > 1 for b, c in verdict.spreads.values()):
        return []
    lines = [
        "",
        "### Repeats: output tok/s per run",
        "",
        "| engine · workload | baseline runs | min | median | max | CV | current runs | min | median | max | CV |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, (b, c) in verdict.spreads.items():
        lines.append(f"| {_cell(name)} | {_spread_cells(b)} | {_spread_cells(c)} |")
    return lines


def _body(verdict, spreads: bool = True) -> list[str]:
    # an engine shown no worse than its reference is news; a commit shown no worse is the norm
    quiet = {NO_SIGNIFICANT_CHANGE} if verdict.reference is not None else {NO_SIGNIFICANT_CHANGE, WITHIN_THRESHOLD}
    flagged = [r for r in verdict.rows if r.mark not in quiet]
    lines = ["", "### Changes" if flagged else "No metric changed beyond its threshold."]
    if flagged:
        lines += [""] + _table(flagged)
    if spreads:
        lines += _spreads(verdict)
    if verdict.notes:
        lines += ["", "### Notes", ""] + [f"- {_cell(n)}" for n in verdict.notes]
    lines += ["", f"<details><summary>All {len(verdict.rows)} rows</summary>", ""]
    return lines + _table(verdict.rows) + ["", "</details>", ""]


def _sources(verdict, name: str = "Baseline") -> str:
    text = f"{name}: `{verdict.baseline_source}`"
    if verdict.baseline_commits:
        text += f" (commit {', '.join(verdict.baseline_commits)})"
    if verdict.current_commits:
        text += f"; current: commit {', '.join(verdict.current_commits)}"
    return text + "."


def render_verdict(verdict) -> str:
    if verdict.reference is not None:
        return _render_versus(verdict)
    code = int(verdict.exit_code)
    lines = [
        f"## Performance verdict: {HEADLINES[code]} (exit {code})",
        "",
        f"{len(verdict.regressions)} regressions, {len(verdict.within_threshold)} within threshold, "
        f"{len(verdict.not_comparable)} not comparable, {len(verdict.rows)} rows. {_sources(verdict)}",
        "",
        f"A change is a regression when it is significant (p < {verdict.alpha:g}; engine counters: "
        f"any difference, compared exactly) and worse than the metric's threshold. "
        f"CI: {(1 - verdict.alpha) * 100:g}% confidence interval of the change. {WITHIN}",
    ]
    return _with_body(verdict, lines)


def _with_body(verdict, lines: list[str]) -> str:
    if verdict.insist:
        lines += ["", "Compared with `--insist`: runs that differ were compared anyway."]
    return "\n".join(lines + _body(verdict))


def _render_versus(verdict) -> str:
    code = int(verdict.exit_code)
    headline = {0: "no engine worse", 1: "WORSE", 3: "not comparable"}[code]
    better = sum(r.mark == "better" for r in verdict.rows)
    lines = [
        f"## A/B against `{verdict.reference}`: {headline} (exit {code})",
        "",
        f"{len(verdict.regressions)} worse, {better} better, {len(verdict.within_threshold)} within threshold, "
        f"{len(verdict.not_comparable)} not comparable, {len(verdict.rows)} rows. {_sources(verdict, 'Reference')}",
        "",
        f"baseline: `{verdict.reference}`'s runs of the workload; current: the row's engine. A row is "
        f"worse or better when the difference is significant (p < {verdict.alpha:g}) and larger than "
        f"the metric's threshold (`--threshold METRIC=0` marks any significant difference). "
        f"CI: {(1 - verdict.alpha) * 100:g}% confidence interval of the change. {WITHIN} Engine "
        f"counters are not compared: the engines do different work by design.",
    ]
    return _with_body(verdict, lines)


def _ratio(x: float | None) -> str:
    if x is None:
        return "–"
    return "∞" if math.isinf(x) else f"{x:.3g}"


def render_ladder(ladder) -> str:
    code = int(ladder.exit_code)
    headline = {0: "passed", 1: "FAILED", 3: "not comparable"}[code]
    lines = [
        f"## Engine ladder: {headline} (exit {code})",
        "",
        "### Ratios between engines of this run",
        "",
        "| workload | rule | numerator | denominator | ratio | result | why |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in ladder.rows:
        result = "pass" if row.passed else "**FAIL**" + (f": {row.note}" if row.note else "")
        lines.append(
            f"| {_cell(row.workload)} | {_cell(str(row.rule))} | {_number(row.numerator)} | "
            f"{_number(row.denominator)} | {_ratio(row.ratio)} | {_cell(result)} | {_cell(row.rule.why)} |"
        )
    lines += ["", "### Engine counters against the committed baseline"]
    if ladder.counters is None:
        return "\n".join(lines + ["", "No baseline given: counters not compared.", ""])
    lines += ["", f"{len(ladder.counters.regressions)} changed, "
              f"{len(ladder.counters.not_comparable)} not comparable. {_sources(ladder.counters)}"]
    return "\n".join(lines + _body(ladder.counters, spreads=False))
