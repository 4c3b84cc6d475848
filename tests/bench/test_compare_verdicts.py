"""`bench compare`'s verdicts end to end on the mock engine: a regression verdict against a
saved baseline, an A/B verdict against one of the compared engines (--versus), and what a
failed run does to each."""

from __future__ import annotations

import pytest

from bench.cli import main
from bench.results import load_run
from tests.bench.helpers import FAST, SMALL


def test_a_failed_run_is_left_out_of_the_ab_verdict_and_the_report_is_written(tmp_path, capsys, exploding_engine):
    out = tmp_path / "ab"
    wl = "quick:num_requests=4,output=fixed(2)"
    code = main(["compare", "--engines", "mock", "crash", "mock:max_batch=1", "--labels", "m", "c", "m1", "--workloads", wl,
                 "--out", str(out), "--versus", "m", *FAST])
    printed = capsys.readouterr().out
    assert "1 run(s) did not complete: the verdict leaves them out" in printed
    assert "## A/B against `m`" in printed and "| m1 · quick |" in printed and "| c · quick |" not in printed
    assert (out / "report.html").exists()
    assert code == 1  # a run failed (and m1, one request at a time, may be worse): 1 either way
    # only the reference left complete: no verdict, still a report
    out2 = tmp_path / "ab2"
    main(["compare", "--engines", "mock", "crash", "--labels", "m", "c", "--workloads", wl, "--out", str(out2),
          "--versus", "m", *FAST])
    assert "no complete runs of 'm' and of another engine: no A/B verdict" in capsys.readouterr().out
    assert (out2 / "report.html").exists()


def test_a_failed_run_is_left_out_of_the_regression_verdict_and_no_baseline_is_saved(tmp_path, capsys, exploding_engine):
    wl = "quick:num_requests=4,output=fixed(2)"
    base = tmp_path / "b.json"
    assert main(["compare", "--engines", "mock", "--labels", "m", "--workloads", wl, "--out", str(tmp_path / "a"),
                 "--save-baseline", str(base), *FAST]) == 0
    capsys.readouterr()
    again = tmp_path / "again.json"
    code = main(["compare", "--engines", "mock", "crash", "--labels", "m", "c", "--workloads", wl, "--out", str(tmp_path / "b"),
                 "--baseline", str(base), "--save-baseline", str(again), *FAST])
    printed = capsys.readouterr().out
    assert code == 1  # the failed run, not the verdict (m is judged: no regression)
    assert "1 run(s) did not complete: the verdict leaves them out, and no baseline is saved" in printed
    assert "## Performance verdict: no regression (exit 0)" in printed
    assert not again.exists() and (tmp_path / "b" / "report.html").exists()


def test_compare_repeats_save_and_judge_a_baseline(tmp_path, capsys):
    wl = "quick:num_requests=5,output=fixed(4)"
    base = tmp_path / "base.json"
    assert main(["compare", "--engines", "mock:step_time_s=0.001", "--labels", "m", "--workloads", wl, "--repeat", "2",
                 "--out", str(tmp_path / "a"), "--save-baseline", str(base), *FAST]) == 0
    assert sorted(p.name for p in (tmp_path / "a").iterdir() if p.is_dir()) == ["m__quick_num_requests=5_output=fixed_4__r1", "m__quick_num_requests=5_output=fixed_4__r2"]
    r2 = load_run(tmp_path / "a" / "m__quick_num_requests=5_output=fixed_4__r2")
    assert r2.manifest["repeat"] == {"index": 2, "count": 2}
    assert r2.summary["consistency"]["reference_run"].endswith("__r1")  # determinism check of repeats
    assert r2.summary["consistency"]["requests_equal"] == 5
    assert base.is_file()
    capsys.readouterr()
    # same label and workload, other engine options: not comparable (exit 3), never judged
    code = main(["compare", "--engines", "mock:step_time_s=0.001,max_batch=2", "--labels", "m", "--workloads", wl,
                 "--out", str(tmp_path / "b"), "--baseline", str(base), *FAST])
    assert code == 3
    out = capsys.readouterr().out
    assert "not comparable" in out
    assert "not comparable" in (tmp_path / "b" / "report.html").read_text()


def test_compare_versus_judges_each_engine_against_the_reference(tmp_path, capsys):
    wl = "quick:num_requests=8,output=fixed(6)"
    engines = ["mock:step_time_s=0.001", "mock:step_time_s=0.004"]  # the second's steps 4x longer
    code = main(["compare", "--engines", *engines, "--labels", "fast", "slow", "--workloads", wl, "--repeat", "2",
                 "--out", str(tmp_path / "ab"), "--versus", "fast", "--alpha", "0.05", *FAST])
    out = capsys.readouterr().out
    assert code == 1  # an engine significantly worse than the reference, as a regression would
    assert "## A/B against `fast`: WORSE (exit 1)" in out
    assert "significant (p < 0.05)" in out  # --alpha reached the verdict
    assert "| slow · quick | tpot_ms.p50 |" in out and "**worse**" in out
    report = (tmp_path / "ab" / "report.html").read_text()
    assert "A/B against fast" in report


@pytest.mark.parametrize(
    "extra, words",
    [
        (["--versus", "vllm"], "--versus 'vllm': no engine of this comparison has that label; labels: ['mock']"),
        (["--versus", "mock", "--baseline", "b.json"], "--versus and --baseline each make the comparison's verdict"),
        (["--versus", "mock"], "--versus 'mock': it is the only engine here; an A/B needs another"),
        (["--versus", "mock", "--alpha", "1"], "alpha must be between 0 and 1, got 1.0"),
    ],
)
def test_compare_versus_is_checked_before_any_run(tmp_path, capsys, extra, words):
    out = tmp_path / "o"
    assert main(["compare", "--engines", "mock", "--workloads", SMALL, "--out", str(out), *extra, *FAST]) == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_unreadable_baseline_fails_before_any_run(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["compare", "--engines", "mock", "--workloads", SMALL, "--out", str(tmp_path / "o"),
                 "--baseline", str(bad), *FAST]) == 2
    assert str(bad) in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
