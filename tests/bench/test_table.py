"""The terminal table: values, units, failure marks, and its two layouts."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console

from bench.results import RunResult
from bench.table import print_table, results_tables, table_rows


def fake_run(label, status="complete", sweep=None, **summary):
    manifest = {"label": label, "engine": {"name": label}, "workload": {"name": "quick"}, "run": {"status": status}}
    if sweep:
        manifest["sweep"] = sweep
    base = {"counts": {"ok": 60, "error": 3, "timeout": 1, "rejected": 0}, "output_tok_per_s": 1234.56,
            "total_tok_per_s": 45.678, "ttft_ms": {"p50": 12.345, "p99": 1500.0}, "tpot_ms": None,
            "e2e_ms": {"p50": 3.0}, "engine": {"padding_efficiency": 0.4937, "preemptions": 2}, "roofline": None}
    return RunResult(Path(label), manifest, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), {**base, **summary})


def test_cells():
    (row,) = table_rows([fake_run("naive")])
    assert row["run"] == "naive" and row["workload"] == "quick"
    assert (row["ok"], row["error"], row["timeout"], row["rejected"]) == ("60", "3", "1", "0")
    assert row["out tok/s"] == "1,235" and row["total tok/s"] == "45.7"
    assert row["TTFT p50 ms"] == "12.3" and row["TTFT p99 ms"] == "1,500.0" and row["E2E p50 ms"] == "3.00"
    assert row["TPOT p50 ms"] == "-"  # no distribution: a dash, not a crash
    assert row["pad eff %"] == "49.4" and row["preempt"] == "2" and row["roofline %"] == "-"
    assert row["schedule %"] == row["in-step %"] == "-"
    roofline = {"efficiency": 0.5, "steps_bound": {"schedule_efficiency": 0.625, "efficiency": 0.8}}
    (row,) = table_rows([fake_run("paged", roofline=roofline)])
    assert (row["roofline %"], row["schedule %"], row["in-step %"]) == ("50.0", "62.5", "80.0")


def test_unfinished_runs_and_sweep_points_are_marked():
    rows = table_rows([fake_run("paged [x]", status="interrupted"),
                       fake_run("paged", sweep={"name": "s", "variable": "rate", "value": 4.0}, engine=None)])
    assert rows[0]["run"] == "paged [x] [interrupted]"
    assert rows[1]["workload"] == "quick rate=4" and rows[1]["pad eff %"] == "-"


def test_wide_when_it_fits_tall_when_not():
    runs = [fake_run("naive"), fake_run("paged")]
    wide = Console(width=300, record=True)
    print_table(runs, wide)
    narrow = Console(width=80, record=True)
    print_table(runs, narrow)
    wide_text, narrow_text = wide.export_text(), narrow.export_text()
    (wide_table,) = results_tables(runs, width=300)
    (tall_table,) = results_tables(runs, width=80)
    assert len(wide_table.columns) == 18  # run, workload and 16 metrics
    assert len(tall_table.columns) == 3  # metric, naive, paged
    assert max(len(line) for line in narrow_text.splitlines()) <= 80
    assert "paged [x]" not in wide_text and "TTFT p99 ms" in narrow_text and "TTFT p99 ms" in wide_text
    assert "1,235" in narrow_text


def test_many_runs_are_split_into_tables_that_fit():
    runs = [fake_run(f"continuous:token_budget=1024__r{i}") for i in range(1, 21)]
    narrow = Console(width=80, record=True)
    print_table(runs, narrow, title="compare")
    text = narrow.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    tables = [line.strip() for line in text.splitlines() if "of 20)" in line]
    assert len(tables) >= 4 and tables[0].startswith("compare (1-") and tables[-1].endswith("-20 of 20)")
    assert text.count("1,235") == 20  # every run's throughput is shown, once
    assert "__r20" in text


def test_the_wide_layout_is_chosen_only_when_nothing_would_be_cut():
    runs = [fake_run(f"continuous__r{i}") for i in range(1, 11)]
    for width in (120, 160, 200, 240):
        console = Console(width=width, record=True)
        print_table(runs, console)
        text = console.export_text()
        assert "…" not in text, width  # no header or label cut short
        assert "continuous__r10" in text and "TTFT p99 ms" in text
