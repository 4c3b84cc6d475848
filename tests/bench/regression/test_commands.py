"""`bench baseline save | check | ladder` end to end through the CLI: output and exit codes."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from bench.regression import load_baseline


def bench(*args: str) -> int:
    return main([str(a) for a in args])


def test_save_then_check_same_code(data, tmp_path, capsys):
    out = tmp_path / "b.json"
    assert bench("baseline", "save", data / "base", "-o", out) == 0
    assert f"baseline saved: {out}" in capsys.readouterr().out
    assert len(load_baseline(out).groups[0].runs) == 3
    assert bench("baseline", "check", data / "same", "--baseline", out) == 0
    assert capsys.readouterr().out.startswith("## Performance verdict: no regression (exit 0)")


def test_check_exit_codes(data, capsys):
    base = data / "base.json"
    assert bench("baseline", "check", data / "slow", "--baseline", base) == 1
    assert bench("baseline", "check", data / "padded", "--baseline", base) == 1
    assert bench("baseline", "check", data / "other-machine", "--baseline", base) == 3
    assert bench("baseline", "check", data / "other-machine", "--baseline", base, "--insist") == 0
    # result directories work as the baseline too
    assert bench("baseline", "check", data / "noisy/current", "--baseline", data / "noisy/base") == 0


def test_thresholds_from_the_command_line(data, tmp_path):
    # the slow runs are ~25% slower everywhere: 30% thresholds let them pass
    loose = [a for name in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms", "output_tok_per_s", "total_tok_per_s")
             for a in ("--threshold", f"{name}=30")]
    md = tmp_path / "out" / "verdict.md"
    assert bench("baseline", "check", data / "slow", "--baseline", data / "base.json", *loose, "--markdown", md) == 0
    assert md.read_text().startswith("## Performance verdict: no regression (exit 0)")
    assert bench("baseline", "check", data / "slow", "--baseline", data / "base.json", *loose[:-2]) == 1


def test_a_relative_threshold_cannot_excuse_a_counter_leaving_zero(data):
    # padded_tokens 0 -> 1 is an infinite relative change
    args = ("--threshold", "padded_tokens=1000", "--threshold", "tokens_computed=1")
    assert bench("baseline", "check", data / "padded", "--baseline", data / "base.json", *args) == 1


@pytest.mark.parametrize(
    "args, message",
    [
        (["--threshold", "ttft=5"], "threshold for unknown metric 'ttft'"),
        (["--threshold", "ttft_ms.p50"], "expected METRIC=PERCENT"),
        (["--alpha", "2"], "alpha must be between 0 and 1"),
    ],
)
def test_bad_options_exit_2(data, capsys, args, message):
    assert bench("baseline", "check", data / "same", "--baseline", data / "base.json", *args) == 2
    assert message in capsys.readouterr().err


def test_invalid_inputs_exit_2_naming_the_file(data, tmp_path, copy_case, capsys):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text("{\n")
    assert bench("baseline", "check", data / "same", "--baseline", corrupt) == 2
    assert f"error: {corrupt}: not valid JSON" in capsys.readouterr().err

    old = tmp_path / "old.json"
    old.write_text(json.dumps({**json.loads((data / "base.json").read_text()), "format_version": 0}))
    assert bench("baseline", "check", data / "same", "--baseline", old) == 2
    assert f"{old}: baseline format version 0" in capsys.readouterr().err

    partial = copy_case("padded")
    (partial / "continuous__ci-mixed" / "steps.parquet").unlink()
    assert bench("baseline", "check", partial, "--baseline", data / "base.json") == 2
    assert "missing steps.parquet" in capsys.readouterr().err

    assert bench("baseline", "check", tmp_path / "nowhere", "--baseline", data / "base.json") == 2
    assert "no such result directory" in capsys.readouterr().err


def test_ladder_command(data, tmp_path, copy_case, capsys):
    assert bench("baseline", "ladder", data / "ladder", "--baseline", data / "ladder-baseline.json") == 0
    assert capsys.readouterr().out.startswith("## Engine ladder: passed (exit 0)")

    broken = copy_case("ladder")
    import shutil

    shutil.rmtree(broken / "continuous__ci-mixed")
    shutil.copytree(data / "ladder-broken" / "continuous__ci-mixed", broken / "continuous__ci-mixed")
    md = tmp_path / "ladder.md"
    code = bench("baseline", "ladder", broken, "--baseline", data / "ladder-baseline.json", "--markdown", md)
    assert code == 1
    assert md.read_text().startswith("## Engine ladder: FAILED (exit 1)")

    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"metric": "padded_tokens", "numerator": "naive",
                                            "denominator": "static", "min": 2}]}))
    assert bench("baseline", "ladder", broken, "--rules", rules) == 0  # this rule holds
