"""The CI ladder gate: same-run ratios between engines, and exact counters vs a committed baseline."""

from __future__ import annotations

import json

import pytest

from bench.regression import DEFAULT_RULES, BaselineError, ExitCode, RatioRule, check_ladder, load_rules


def rows_by_rule(verdict):
    return {(r.rule.metric, r.rule.numerator, r.rule.denominator): r for r in verdict.rows}


def broken_ladder(runs):
    return [r for r in runs("ladder") if r.label != "continuous"] + runs("ladder-broken")


def test_healthy_ladder_passes(runs, data):
    verdict = check_ladder(runs("ladder"), baseline=data / "ladder-baseline.json")
    assert verdict.exit_code == ExitCode.OK
    assert len(verdict.rows) == len(DEFAULT_RULES) and all(r.passed for r in verdict.rows)
    assert verdict.counters.exit_code == ExitCode.OK
    assert {r.kind for r in verdict.counters.rows} == {"counter"}  # never absolute times
    tput = rows_by_rule(verdict)[("output_tok_per_s", "continuous", "static")]
    assert tput.ratio == pytest.approx(tput.numerator / tput.denominator) and tput.ratio > 1.1


def test_broken_refill_fails_the_ladder(runs, data):
    verdict = check_ladder(broken_ladder(runs), baseline=data / "ladder-baseline.json")
    assert verdict.exit_code == ExitCode.REGRESSION
    failed = {(r.rule.metric, r.rule.numerator, r.rule.denominator) for r in verdict.failures}
    assert failed == {
        ("output_tok_per_s", "continuous", "static"),
        ("idle_slot_steps", "static", "continuous"),
        ("steps", "continuous", "static"),
    }
    changed = {r.metric for r in verdict.counters.regressions}
    assert changed == {"steps", "idle_slot_steps", "kv_tokens_peak"}
    assert {r.label for r in verdict.counters.regressions} == {"continuous"}


def test_ratio_rules_alone_catch_the_break(runs):
    # without a baseline only the same-run ratios judge: they still catch it
    verdict = check_ladder(broken_ladder(runs))
    assert verdict.counters is None and verdict.exit_code == ExitCode.REGRESSION


def test_counters_alone_catch_a_change_the_ratios_miss(runs, data):
    # one extra pad token in continuous keeps every ratio but changes its counters
    current = [r for r in runs("ladder") if r.label != "continuous"] + runs("padded")
    verdict = check_ladder(current, baseline=data / "ladder-baseline.json")
    assert not verdict.failures
    assert {r.metric for r in verdict.counters.regressions} == {"padded_tokens", "tokens_computed"}
    assert verdict.exit_code == ExitCode.REGRESSION


def test_counters_ignore_the_machine(runs, data):
    # CI runners differ from the machine that saved the baseline: counters are still compared
    import dataclasses

    def elsewhere(run):
        return dataclasses.replace(run, manifest={**run.manifest, "machine": {**run.manifest["machine"], "cpu": "other"}})

    verdict = check_ladder([elsewhere(r) for r in runs("ladder")], baseline=data / "ladder-baseline.json")
    assert verdict.exit_code == ExitCode.OK and verdict.counters.rows


def test_zero_over_zero_is_equal_and_x_over_zero_infinite(runs):
    rules = [
        RatioRule("preemptions", "naive", "static", min=0.5, max=1.5),  # 0 / 0
        RatioRule("padded_tokens", "naive", "static", min=1e9),  # 7857 / 0
        RatioRule("padded_tokens", "static", "naive", max=0),  # 0 / 7857
    ]
    rows = check_ladder(runs("ladder"), rules=rules).rows
    assert [r.ratio for r in rows] == [1.0, float("inf"), 0.0]
    assert all(r.passed for r in rows)


def test_bounds_are_inclusive_and_both_apply(runs):
    ladder = runs("ladder")
    base = check_ladder(ladder, rules=[RatioRule("output_tok_per_s", "paged", "naive", min=1)]).rows[0].ratio
    assert check_ladder(ladder, rules=[RatioRule("output_tok_per_s", "paged", "naive", min=base)]).rows[0].passed
    assert not check_ladder(ladder, rules=[RatioRule("output_tok_per_s", "paged", "naive", min=0.5, max=base * 0.99)]).rows[0].passed


def test_any_summary_path_can_be_a_rule_metric(runs):
    rule = RatioRule("ttft_ms.p50", "naive", "paged", min=1.5)  # same-run latency ratio
    (row,) = check_ladder(runs("ladder"), rules=[rule]).rows
    naive = next(r for r in runs("ladder") if r.label == "naive")
    assert row.passed and row.numerator == naive.summary["ttft_ms"]["p50"]


def test_missing_label_or_value_fails_its_rule(runs):
    rules = [RatioRule("output_tok_per_s", "contnuous", "static", min=1),
             RatioRule("no_such_key", "naive", "static", min=1)]
    rows = check_ladder(runs("ladder"), rules=rules).rows
    assert not rows[0].passed and "no run labelled 'contnuous'" in rows[0].note
    assert not rows[1].passed and "no value for 'no_such_key'" in rows[1].note


def test_markdown_lists_every_ratio(runs, data):
    md = check_ladder(broken_ladder(runs), baseline=data / "ladder-baseline.json").to_markdown()
    assert md.startswith("## Engine ladder: FAILED (exit 1)")
    assert md.count("**FAIL**") == 3 and md.count("| pass |") == len(DEFAULT_RULES) - 3
    assert "output_tok_per_s: continuous / static >= 1.1" in md
    assert "### Engine counters against the committed baseline" in md


def test_rules_file(tmp_path, runs):
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"metric": "steps", "numerator": "naive", "denominator": "paged",
                                           "min": 2, "why": "batching"}]}))
    (rule,) = load_rules(path)
    assert rule == RatioRule("steps", "naive", "paged", min=2, why="batching")
    assert check_ladder(runs("ladder"), rules=[rule]).rows[0].passed  # 234 / 97


@pytest.mark.parametrize(
    "content, message",
    [
        ("{", r"not valid JSON \(line 1"),
        ('{"rules": []}', "at least one rule"),
        ('{"rules": [{"metric": "steps", "numerator": "a", "denominator": "b"}]}', r"rules\[0\]: needs a min or a max"),
        ('{"rules": [{"metric": "steps", "numerator": "a", "denominator": "b", "min": "2"}]}', r"rules\[0\]\.min: expected a number"),
        ('{"rules": [{"metric": "", "numerator": "a", "denominator": "b", "min": 1}]}', r"rules\[0\]\.metric: expected a non-empty string"),
        ('{"rules": [{"metric": "s", "numerator": "a", "denominator": "b", "min": 1, "floor": 2}]}', r"unknown fields \['floor'\]"),
    ],
)
def test_bad_rules_file(tmp_path, content, message):
    path = tmp_path / "rules.json"
    path.write_text(content)
    with pytest.raises(BaselineError, match=message):
        load_rules(path)
