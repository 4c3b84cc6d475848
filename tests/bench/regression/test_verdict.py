"""Verdicts on checked-in result files: the cases a CI gate must get right."""

from __future__ import annotations

import json

import pytest

from bench.regression import (
    NO_SIGNIFICANT_CHANGE,
    WITHIN_THRESHOLD,
    ExitCode,
    compare_to_baseline,
    evaluate,
    load_baseline,
)
from engines.request import ConfigError


def rows_by_metric(verdict, label="continuous"):
    return {r.metric: r for r in verdict.rows if r.label == label}


@pytest.fixture(scope="module")
def slow_verdict(runs, data):
    return evaluate(runs("slow"), data / "base.json")


def test_injected_20pct_throughput_drop_is_a_regression(slow_verdict):
    assert slow_verdict.exit_code == ExitCode.REGRESSION == 1
    row = rows_by_metric(slow_verdict)["output_tok_per_s"]
    assert row.mark == "worse" and row.regression
    assert -0.22 < row.change < -0.18  # the fixture's steps are 25% longer: 1/1.25 = -20%
    assert row.p_value < 0.01 and row.ci[1] < -0.10  # significant, and the CI is past 10%
    # the same slowdown shows in per-request latency, tested over the request distributions
    assert rows_by_metric(slow_verdict)["tpot_ms.p50"].mark == "worse"
    assert rows_by_metric(slow_verdict)["e2e_ms.p50"].mark == "worse"


def test_slowdown_leaves_counters_untouched(slow_verdict):
    counters = [r for r in slow_verdict.rows if r.kind == "counter"]
    assert counters and all(r.mark == "no significant change" and r.change == 0 for r in counters)


def test_repeated_runs_of_the_same_code_are_not_flagged(runs, data):
    verdict = evaluate(runs("same"), data / "base.json")
    assert verdict.exit_code == ExitCode.OK
    assert {r.mark for r in verdict.rows} == {NO_SIGNIFICANT_CHANGE, WITHIN_THRESHOLD}
    assert len(verdict.rows) == 23  # 8 distribution + 2 rate (no SLO: no goodput) + 13 counters
    # where the interval is narrow the runs show the code no worse; where it is wide they cannot
    by_metric = rows_by_metric(verdict)
    assert by_metric["output_tok_per_s"].mark == WITHIN_THRESHOLD and by_metric["output_tok_per_s"].ci[0] > -0.05
    assert by_metric["ttft_ms.p50"].mark == NO_SIGNIFICANT_CHANGE and by_metric["ttft_ms.p50"].ci[1] > 0.15
    assert all(r.mark == NO_SIGNIFICANT_CHANGE for r in verdict.rows if r.kind == "counter")


def test_a_raised_threshold_lets_the_drop_pass(runs, data):
    verdict = evaluate(runs("slow"), data / "base.json", thresholds={"output_tok_per_s": 0.25})
    row = rows_by_metric(verdict)["output_tok_per_s"]
    # -20%, its whole interval inside the 25% allowed: shown no worse than the threshold
    assert row.threshold == 0.25 and row.mark == WITHIN_THRESHOLD and not row.regression
    assert -0.25 < row.ci[0] < row.ci[1] < -0.15
    assert verdict.exit_code == ExitCode.REGRESSION  # latencies still regressed


def test_large_change_inside_overlapping_noise_is_not_significant(runs):
    verdict = compare_to_baseline(runs("noisy/current"), runs("noisy/base"))
    ttft = rows_by_metric(verdict, "http")["ttft_ms.p50"]
    assert ttft.change > 2 * ttft.threshold  # a large change ...
    assert ttft.p_value > 0.05 and ttft.ci[0] < 0 < ttft.ci[1]  # ... well inside the noise
    assert ttft.mark == "no significant change" and not ttft.regression
    assert verdict.exit_code == ExitCode.OK


def test_single_runs_give_no_throughput_test(runs):
    verdict = compare_to_baseline(runs("noisy/current"), runs("noisy/base"))
    row = rows_by_metric(verdict, "http")["output_tok_per_s"]
    assert abs(row.change) > row.threshold
    assert row.p_value is None and row.mark == "no significant change"
    assert "1 vs 1 runs" in row.note


def test_open_loop_runs_skip_timing_dependent_counters(runs):
    verdict = compare_to_baseline(runs("noisy/current"), runs("noisy/base"))
    names = {r.metric for r in verdict.rows}
    assert {"requests_ok", "output_tokens"} <= names
    assert not names & {"steps", "padded_tokens"}  # HTTP: no step stats at all


def test_other_machine_is_not_comparable_unless_insisted(runs, data):
    verdict = evaluate(runs("other-machine"), data / "base.json")
    assert verdict.exit_code == ExitCode.NOT_COMPARABLE == 3
    timing = [r for r in verdict.rows if r.kind != "counter"]
    assert timing and all(r.mark == "not comparable" and r.change is None for r in timing)
    assert "machine.cpu" in timing[0].note
    assert any("machine.cpu_count: 4 (baseline) vs 8 (current)" in n for n in verdict.notes)
    # counters do not depend on the machine: still compared, exactly
    counters = [r for r in verdict.rows if r.kind == "counter"]
    assert counters and all(r.mark == "no significant change" for r in counters)

    insisted = evaluate(runs("other-machine"), data / "base.json", insist=True)
    assert insisted.exit_code == ExitCode.OK
    assert "not comparable" not in {r.mark for r in insisted.rows}


def test_hostname_alone_does_not_block(runs):
    base, same = runs("base"), runs("same")
    hosts = {r.manifest["machine"]["hostname"] for r in base + same}
    assert len(hosts) == 6  # every fixture run has its own (ephemeral CI runners)
    assert compare_to_baseline(same, base).exit_code == ExitCode.OK


def test_counter_change_is_reported_whatever_the_noise(runs, data):
    verdict = evaluate(runs("padded"), data / "base.json")
    flagged = {r.metric: r for r in verdict.regressions}
    assert set(flagged) == {"padded_tokens", "tokens_computed"}
    padded = flagged["padded_tokens"]
    assert (padded.baseline, padded.current) == (0, 1) and padded.kind == "counter"
    # the run's steps are 6x noisier than the baseline's; no timing row moved past its threshold
    timing = [r for r in verdict.rows if r.kind != "counter"]
    # and none is shown within its threshold: one current run (its latency CIs see request
    # noise only; its rates have no CI)
    assert {r.mark for r in timing} == {NO_SIGNIFICANT_CHANGE}
    assert verdict.exit_code == ExitCode.REGRESSION


def test_counter_threshold_can_tolerate_a_change(runs, data):
    verdict = evaluate(runs("padded"), data / "base.json", thresholds={"tokens_computed": 0.01})
    assert {r.metric for r in verdict.regressions} == {"padded_tokens"}  # 0 -> 1 is still infinite


def test_a_counter_that_differs_between_repeats_is_not_comparable(runs):
    baseline = runs("base")[:1] + runs("padded")  # same identity, padded_tokens 0 and 1
    verdict = compare_to_baseline(runs("same"), baseline)
    padded = rows_by_metric(verdict)["padded_tokens"]
    assert padded.mark == "not comparable" and "not deterministic" in padded.note
    assert verdict.exit_code == ExitCode.NOT_COMPARABLE


def test_different_experiment_blocks_every_row(runs, copy_case):
    from bench.results import write_json

    case = copy_case("same")
    for run in case.iterdir():
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["engine"]["options"]["max_batch"] = 32
        write_json(run / "manifest.json", manifest)
    from bench.regression import load_runs

    verdict = compare_to_baseline(load_runs([case]), runs("base"))
    assert verdict.exit_code == ExitCode.NOT_COMPARABLE
    assert {r.mark for r in verdict.rows} == {"not comparable"}  # counters included
    assert any("engine.options.max_batch: 16 (baseline) vs 32 (current)" in n for n in verdict.notes)


def test_missing_and_new_groups(runs, data):
    # the ladder has continuous (comparable with base) plus three engines the baseline lacks
    verdict = evaluate(runs("ladder"), data / "base.json")
    assert verdict.exit_code == ExitCode.OK
    assert {r.label for r in verdict.rows} == {"continuous"}
    assert sum("not in the baseline" in n for n in verdict.notes) == 3
    # the other way round: engines in the baseline but not run now cannot be judged
    verdict = evaluate(runs("base"), data / "ladder-baseline.json")
    missing = [r for r in verdict.rows if r.metric == "*"]
    assert {r.label for r in missing} == {"naive", "static", "paged"}
    assert verdict.exit_code == ExitCode.NOT_COMPARABLE


def test_verdict_is_the_same_from_a_baseline_file_or_its_directories(runs, data):
    from_file = evaluate(runs("same"), data / "base.json")
    from_dirs = evaluate(runs("same"), data / "base")
    assert [(r.metric, r.baseline, r.p_value, r.ci, r.mark) for r in from_file.rows] == [
        (r.metric, r.baseline, r.p_value, r.ci, r.mark) for r in from_dirs.rows
    ]
    assert load_baseline(data / "base.json").groups[0].sample_sizes["ttft_ms"] == 480


def test_verdict_is_deterministic(runs, data):
    a = evaluate(runs("noisy/current"), data / "noisy/base")
    b = evaluate(runs("noisy/current"), data / "noisy/base")
    assert [(r.p_value, r.ci) for r in a.rows] == [(r.p_value, r.ci) for r in b.rows]


def test_bad_options_are_config_errors(runs):
    with pytest.raises(ConfigError, match="unknown metric 'ttft'"):
        compare_to_baseline(runs("same"), runs("base"), thresholds={"ttft": 0.1})
    with pytest.raises(ConfigError, match="alpha"):
        compare_to_baseline(runs("same"), runs("base"), alpha=5)
    with pytest.raises(ConfigError, match=">= 0"):
        compare_to_baseline(runs("same"), runs("base"), thresholds={"ttft_ms.p50": -0.1})


def test_report_dict_carries_every_row(slow_verdict):
    report = slow_verdict.to_report_dict()
    assert report["markdown"] == slow_verdict.to_markdown()
    assert len(report["rows"]) == len(slow_verdict.rows)
    tput = next(r for r in report["rows"] if r["metric"] == "output_tok_per_s")
    assert tput["mark"] == "worse" and tput["change"].startswith("-19.")
    assert tput["engine · workload"] == "continuous · ci-mixed"


def test_one_slow_run_among_repeats_is_run_to_run_noise(runs):
    # one of two current runs hit a slow machine: pooled requests alone would call it a
    # regression, but the repeats disagree, so it is not significant
    from bench.regression import Baseline
    from bench.regression.stats import median_shift

    current = [runs("slow")[0], runs("same")[0]]
    verdict = compare_to_baseline(current, runs("base"))
    tpot = rows_by_metric(verdict)["tpot_ms.p50"]
    assert tpot.change > tpot.threshold and tpot.mark == "no significant change"
    assert tpot.p_value > 0.1 and "Welch t over runs" in tpot.test
    b = Baseline.from_runs(runs("base")).groups[0].samples["tpot_ms"]
    c = Baseline.from_runs(current).groups[0].samples["tpot_ms"]
    assert median_shift(b, c, alpha=0.01, seed=0).p_value < 1e-6  # the requests-only view
    assert verdict.exit_code == ExitCode.OK


def test_single_runs_are_judged_on_requests_and_say_so(runs, data):
    verdict = evaluate(runs("padded"), data / "base.json")
    ttft = rows_by_metric(verdict)["ttft_ms.p50"]
    assert "requests only" in ttft.test
    assert any("1 current runs" in n and "--repeat" in n for n in verdict.notes)


def _with_other_workload_content(case):
    from bench.regression import load_runs
    from bench.results import write_json

    for run in case.iterdir():
        manifest = json.loads((run / "manifest.json").read_text())
        manifest["workload"]["content_hash"] = "f" * 64  # same name, other requests
        write_json(run / "manifest.json", manifest)
    return load_runs([case])


def test_changed_workload_is_a_different_experiment(runs, copy_case):
    verdict = compare_to_baseline(_with_other_workload_content(copy_case("same")), runs("base"))
    assert verdict.exit_code == ExitCode.NOT_COMPARABLE
    assert {r.mark for r in verdict.rows} == {"not comparable"}
    assert any("workload.content_hash" in n for n in verdict.notes)


def test_two_workloads_of_one_name_are_kept_apart(runs, copy_case):
    other = _with_other_workload_content(copy_case("same"))
    verdict = compare_to_baseline(runs("same") + other, runs("base"))
    # the runs with the baseline's workload content are compared; the others are new
    assert verdict.exit_code == ExitCode.OK
    assert {r.workload for r in verdict.rows} == {"ci-mixed"}
    assert any(n.startswith("continuous · ci-mixed#ffffffff: not in the baseline") for n in verdict.notes)
