"""write_report: saved runs -> one self-contained HTML file, written atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bench.results import RunResult
from reports.html import Html, join, tag
from reports.page import Section, render_page
from reports.runs import RunView, view_runs
from reports.sections import consistency, latency, manifest, roofline, summary, sweeps, throughput, timeline, waste
from reports.sections import verdict as verdict_section


def _header(views: list[RunView]) -> Html:
    workloads = sorted({v.workload for v in views})
    lines = [
        tag("p", f"{len(views)} run(s) of {len(workloads)} workload(s): {', '.join(workloads)}. "
                 "Rebuild with `bench report DIR...` from the result directories; every number "
                 "below is defined in the README's metric table."),
        tag("ul", join(tag("li", f"{v.name}: {v.run.path.name}") for v in views)),
    ]
    return join(lines)


def build_sections(views: list[RunView], verdict: dict | None) -> list[Section]:
    sections = [verdict_section.section(verdict)] if verdict is not None else []
    sections += [summary.section(views), latency.section(views), throughput.section(views)]
    curves = sweeps.section(views)
    if curves is not None:
        sections.append(curves)
    sections += [waste.section(views), roofline.section(views), timeline.section(views),
                 consistency.section(views), manifest.section(views)]
    return sections


def render_report(runs: list[RunResult], *, title: str | None = None, verdict: dict | None = None) -> str:
    """The report as one HTML string (same inputs, same bytes)."""
    if not runs:
        raise ValueError("no runs to report: give at least one result directory")
    if verdict is not None:
        verdict_section.check(verdict)
    views = view_runs(list(runs))
    title = title or "LLM batching benchmark: " + ", ".join(dict.fromkeys(v.label for v in views))
    return render_page(title, _header(views), build_sections(views, verdict))


def write_report(
    runs: list[RunResult], out_path: Path, *, title: str | None = None, verdict: dict | None = None
) -> Path:
    """Write the report of `runs` to out_path (temp file + rename: never half a file)."""
    out_path = Path(out_path)
    page = render_report(runs, title=title, verdict=verdict)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, prefix=f".{out_path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is meant to be shared
        os.replace(tmp, out_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_path
