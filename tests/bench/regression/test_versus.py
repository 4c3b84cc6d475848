"""A/B verdicts: engines judged against a reference engine measured beside them
(`bench baseline versus`), on the checked-in result directories."""

from __future__ import annotations

import json
import shutil

import pytest

from bench.cli import main
from bench.regression import NO_SIGNIFICANT_CHANGE, WITHIN_THRESHOLD, ExitCode, compare_engines, load_runs
from engines.request import ConfigError


def relabelled(data, tmp_path, case: str, label: str):
    """A writable copy of data/<case> whose runs are labelled `label`: the same engine code
    under another name, so an A/B of it against the original knows the true answer."""
    target = tmp_path / f"{case.replace('/', '_')}-{label}"
    shutil.copytree(data / case, target)
    for manifest in target.rglob("manifest.json"):
        m = json.loads(manifest.read_text())
        m["label"] = label
        manifest.write_text(json.dumps(m))
    return target


def rows(verdict, label):
    return {r.metric: r for r in verdict.rows if r.label == label}


def test_the_engines_of_one_run_are_judged_against_the_reference(runs):
    verdict = compare_engines(runs("ladder"), "naive", alpha=0.05)
    assert verdict.reference == "naive"
    assert {r.label for r in verdict.rows} == {"static", "continuous", "paged"}
    # engine names and options differ by design: nothing is blocked, no counter is compared
    assert not verdict.not_comparable
    assert {r.kind for r in verdict.rows} == {"distribution", "rate"}
    paged = rows(verdict, "paged")
    # naive pads every request to its batch's longest: paged finishes requests far sooner ...
    assert paged["e2e_ms.p99"].mark == "better" and paged["e2e_ms.p99"].change < -0.2
    assert paged["e2e_ms.p99"].ci[1] < 0
    # ... at a higher time per output token (more requests share each step): worse, exit 1
    assert paged["tpot_ms.p50"].mark == "worse" and paged["tpot_ms.p50"].regression
    assert verdict.exit_code == ExitCode.REGRESSION


def test_a_slower_engine_is_worse_and_the_same_code_is_not(runs, data, tmp_path):
    base = runs("base")
    slower = compare_engines(base + load_runs([relabelled(data, tmp_path, "slow", "slower")]), "continuous")
    tput = rows(slower, "slower")["output_tok_per_s"]
    assert tput.mark == "worse" and -0.22 < tput.change < -0.18  # steps 25% longer
    assert slower.exit_code == ExitCode.REGRESSION
    same = compare_engines(base + load_runs([relabelled(data, tmp_path, "same", "again")]), "continuous")
    assert same.exit_code == ExitCode.OK
    assert {r.mark for r in same.rows} == {NO_SIGNIFICANT_CHANGE, WITHIN_THRESHOLD}  # neither worse nor better
    assert "over runs" in rows(same, "again")["tpot_ms.p99"].test  # three repeats a side: run-to-run noise tested


LATENCIES_AND_RATES = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "output_tok_per_s", "total_tok_per_s")


def test_the_same_code_is_shown_within_a_generous_threshold_and_not_within_zero(runs, data, tmp_path):
    both = runs("base") + load_runs([relabelled(data, tmp_path, "same", "again")])
    generous = compare_engines(both, "continuous", thresholds={m: 0.5 for m in LATENCIES_AND_RATES})
    again = rows(generous, "again")
    within = {m for m, r in again.items() if r.mark == WITHIN_THRESHOLD}
    # every row with a CI is shown no worse than 50%, but tpot_ms.p99: its repeats disagree
    # (the interval over runs reaches +58%), so the runs cannot show it
    assert all(r.ci is not None for r in again.values())
    assert within == set(again) - {"tpot_ms.p99"}
    assert again["tpot_ms.p99"].mark == NO_SIGNIFICANT_CHANGE and again["tpot_ms.p99"].ci[1] > 0.5
    assert generous.exit_code == ExitCode.OK  # not a regression, nor anything else to report
    md = generous.to_markdown()
    assert "0 worse, 0 better, 9 within threshold, 0 not comparable, 10 rows." in md
    assert "within threshold: the CI excludes a change past the threshold in the bad direction" in md
    # in an A/B an engine shown no worse is news: the Changes table lists it
    changes = md.split("### Changes", 1)[1].split("###", 1)[0]
    assert "| again · ci-mixed | tpot_ms.p50 |" in changes and changes.count("| within threshold |") == 9
    # threshold 0: every interval reaches above 0, so nothing is shown no worse than "no change"
    exact = compare_engines(both, "continuous", thresholds={m: 0.0 for m in LATENCIES_AND_RATES})
    assert {r.mark for r in exact.rows} == {NO_SIGNIFICANT_CHANGE}
    assert "0 within threshold" in exact.to_markdown()


def test_runs_that_differ_beyond_the_engine_are_not_comparable(runs, data, tmp_path):
    elsewhere = load_runs([relabelled(data, tmp_path, "other-machine", "elsewhere")])
    verdict = compare_engines(runs("base") + elsewhere, "continuous")
    assert verdict.exit_code == ExitCode.NOT_COMPARABLE
    assert all(r.mark == "not comparable" and "different environment" in r.note for r in verdict.rows)
    assert compare_engines(runs("base") + elsewhere, "continuous", insist=True).exit_code == ExitCode.OK


def test_an_engine_without_reference_runs_of_its_workload(runs):
    verdict = compare_engines(runs("ladder", "noisy/current"), "continuous")
    missing = [r for r in verdict.rows if r.label == "http"]
    assert len(missing) == 1 and missing[0].mark == "not comparable"
    assert missing[0].note == "no continuous runs of this workload"
    assert verdict.exit_code == ExitCode.REGRESSION  # the ladder's engines still differ from continuous


@pytest.mark.parametrize(
    "reference, alpha, words",
    [
        ("vllm", 0.01, "no runs labelled 'vllm' to compare against; the labels here: ['continuous', 'naive', 'paged', 'static']"),
        ("continuous", 1.5, "alpha must be between 0 and 1"),
    ],
)
def test_bad_requests_are_named(runs, reference, alpha, words):
    with pytest.raises(ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        compare_engines(runs("ladder"), reference, alpha=alpha)


def test_only_the_reference_is_nothing_to_compare(runs):
    with pytest.raises(ConfigError, match="only 'continuous' in these result directories"):
        compare_engines(runs("base"), "continuous")


def test_the_command_prints_the_verdict_and_exits_with_its_code(data, tmp_path, capsys):
    md = tmp_path / "ab.md"
    code = main(["baseline", "versus", "naive", str(data / "ladder"), "--alpha", "0.05", "--markdown", str(md)])
    out = capsys.readouterr().out
    assert code == 1
    assert out.startswith("## A/B against `naive`: WORSE (exit 1)")
    assert md.read_text().strip() == out.strip()
    # a threshold wide enough for every difference: no engine is worse
    wide = [a for m in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "output_tok_per_s", "total_tok_per_s")
            for a in ("--threshold", f"{m}=10000")]
    assert main(["baseline", "versus", "naive", str(data / "ladder"), *wide]) == 0
    assert capsys.readouterr().out.startswith("## A/B against `naive`: no engine worse (exit 0)")
    assert main(["baseline", "versus", "hf", str(data / "ladder")]) == 2
