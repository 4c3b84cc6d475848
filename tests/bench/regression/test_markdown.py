"""The Markdown summary for CI logs and pull-request comments, and the HTML report's copy."""

from __future__ import annotations

import dataclasses

import pytest

from bench.regression import compare_to_baseline, evaluate


@pytest.fixture(scope="module")
def slow_md(runs, data):
    return evaluate(runs("slow"), data / "base.json").to_markdown()


def _table_rows(markdown: str, section: str) -> list[list[str]]:
    block = markdown.split(section, 1)[1].split("\n\n", 2)[1]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in block.splitlines()[2:]]


def test_headline_names_verdict_exit_code_and_commits(slow_md):
    first = slow_md.splitlines()[0]
    assert first == "## Performance verdict: REGRESSION (exit 1)"
    assert "commit a1b2c3d4e5f6" in slow_md and "current: commit c3d4e5f6a7b8" in slow_md
    assert "p < 0.01" in slow_md


def test_changes_table_lists_only_flagged_rows(slow_md):
    rows = _table_rows(slow_md, "### Changes")
    metrics = [r[1] for r in rows]
    assert "output_tok_per_s" in metrics and "tpot_ms.p50" in metrics
    assert "padded_tokens" not in metrics  # unchanged counters stay in the collapsed listing
    tput = next(r for r in rows if r[1] == "output_tok_per_s")
    assert tput[-2] == "**worse**" and tput[2] == "2,876 tok/s" and tput[4].startswith("-19.")


def test_every_row_is_in_the_collapsed_listing(slow_md):
    details = slow_md.split("<details>", 1)[1]
    assert "<summary>All 23 rows</summary>" in details
    assert details.count("| continuous · ci-mixed |") == 23


def test_repeats_table_shows_the_spread(slow_md):
    rows = _table_rows(slow_md, "### Repeats: output tok/s per run")
    (row,) = rows
    assert row[0] == "continuous · ci-mixed"
    assert row[1] == "3" and row[6] == "3"  # runs on each side
    assert row[5].endswith("%") and row[10].endswith("%")  # CV of each side


def test_not_comparable_reasons_are_in_the_notes(runs, data):
    md = evaluate(runs("other-machine"), data / "base.json").to_markdown()
    assert md.startswith("## Performance verdict: not comparable (exit 3)")
    notes = md.split("### Notes", 1)[1]
    assert "machine.cpu" in notes and "counters are still compared" in notes


def test_clean_verdict_says_so(runs, data):
    md = evaluate(runs("same"), data / "base.json").to_markdown()
    assert md.startswith("## Performance verdict: no regression (exit 0)")
    assert "No metric changed beyond its threshold." in md and "### Changes" not in md
    # a commit shown no worse is the norm, not news: counted, defined, listed only in the details
    assert "0 regressions, 7 within threshold, 0 not comparable, 23 rows." in md
    assert "within threshold: the CI excludes a change past the threshold in the bad direction" in md
    assert md.split("<details>", 1)[1].count("| within threshold |") == 7


def test_html_report_shows_the_within_threshold_mark(runs, data, tmp_path):
    reports = pytest.importorskip("reports")
    verdict = evaluate(runs("same"), data / "base.json")
    rows = verdict.to_report_dict()["rows"]
    assert next(r for r in rows if r["metric"] == "output_tok_per_s")["mark"] == "within threshold"
    path = reports.write_report(runs("same")[:1], tmp_path / "report.html", verdict=verdict.to_report_dict())
    html = path.read_text()
    assert "<td>within threshold</td>" in html
    # tinted apart from plain rows: 7 rows within threshold, 7 rows of that class
    assert html.count('<tr class="within">') == 7 and "tr.within td" in html


def test_pipes_in_labels_do_not_break_tables(runs):
    def relabel(run):  # a copy: the session's runs are shared
        return dataclasses.replace(run, manifest={**run.manifest, "label": "a|b"})

    current, base = map(relabel, runs("noisy/current")), map(relabel, runs("noisy/base"))
    md = compare_to_baseline(list(current), list(base)).to_markdown()
    listing = md.split("<details>", 1)[1]
    assert "| a\\|b · ci-open |" in listing


def test_html_report_carries_the_verdict(runs, data, tmp_path):
    reports = pytest.importorskip("reports")
    verdict = evaluate(runs("slow"), data / "base.json")
    path = reports.write_report(runs("slow")[:1], tmp_path / "report.html", verdict=verdict.to_report_dict())
    html = path.read_text()
    assert "Regression verdict" in html and "output_tok_per_s" in html
    assert "REGRESSION (exit 1)" in html
