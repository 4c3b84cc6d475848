"""Baseline files: a faithful round trip, and a clear error for every kind of bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.regression import Baseline, BaselineError, load_baseline, load_reference, load_runs, save_baseline
from bench.results import ResultError, write_json


def test_round_trip_keeps_everything_a_verdict_reads(runs, tmp_path):
    saved = Baseline.from_runs(runs("ladder"))
    path = save_baseline(runs("ladder"), tmp_path / "sub" / "b.json")
    loaded = load_baseline(path)
    assert [g.key for g in loaded.groups] == [g.key for g in saved.groups]
    for a, b in zip(saved.groups, loaded.groups):
        assert a.identity == b.identity and a.slo == b.slo
        assert [vars(r) for r in a.runs] == [vars(r) for r in b.runs]
        for name in a.samples:
            np.testing.assert_array_equal(a.samples[name], b.samples[name])
        assert a.sample_sizes == b.sample_sizes


def test_checked_in_baseline_is_what_save_writes_today(runs, data, tmp_path):
    # the file format did not drift from the fixtures (remake them with make_fixtures.py if it must)
    path = save_baseline(runs("base"), tmp_path / "b.json")
    assert json.loads(path.read_text()) == json.loads((data / "base.json").read_text())


def test_large_runs_are_reduced_to_quantiles(runs):
    group = Baseline.from_runs(runs("base")).groups[0]
    assert group.sample_sizes["itl_ms"] > 1000
    assert len(group.samples["itl_ms"]) == 1000
    assert len(group.samples["ttft_ms"]) == group.sample_sizes["ttft_ms"] == 480


def test_repeats_are_grouped_by_label_and_workload(runs):
    baseline = Baseline.from_runs(runs("base") + runs("ladder"))
    sizes = {g.name: len(g.runs) for g in baseline.groups}
    assert sizes["continuous · ci-mixed"] == 4
    assert sizes["naive · ci-mixed"] == 1


def test_repeats_that_differ_are_refused(runs):
    with pytest.raises(BaselineError, match="grouped as a repeat .* machine.cpu"):
        Baseline.from_runs(runs("base") + runs("other-machine"))


def test_incomplete_run_is_refused(runs):
    import dataclasses

    run = runs("padded")[0]
    broken = dataclasses.replace(run, manifest={**run.manifest, "run": {**run.manifest["run"], "status": "interrupted"}})
    with pytest.raises(BaselineError, match="status 'interrupted'.*complete runs"):
        Baseline.from_runs([broken])


def _baseline_json(data) -> dict:
    return json.loads((data / "base.json").read_text())


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: d.update(format_version=2), r"baseline format version 2, this harness reads version 1"),
        (lambda d: d.pop("format_version"), r"baseline format version None"),
        (lambda d: d.update(format="something else"), r"format: expected 'llm-batching-bench baseline'"),
        (lambda d: d.pop("groups"), r"groups: missing \(a partial file\?\)"),
        (lambda d: d.update(groups=[]), r"groups: expected at least one group"),
        (lambda d: d["groups"][0].pop("samples"), r"groups\[0\]\.samples: missing"),
        (lambda d: d["groups"][0]["samples"].pop("itl_ms"), r"groups\[0\]\.samples\.itl_ms: missing"),
        (lambda d: d["groups"][0]["runs"][1]["rates"].update(output_tok_per_s="fast"),
         r"groups\[0\]\.runs\[1\]\.rates\.output_tok_per_s: expected a number or null, found 'fast'"),
        (lambda d: d["groups"][0]["runs"][0]["counters"].update(steps=True),
         r"runs\[0\]\.counters\.steps: expected a number or null, found True"),
        (lambda d: d["groups"][0]["samples"]["ttft_ms"]["values"].append("x"),
         r"samples\.ttft_ms\.values: expected a list of numbers"),
        (lambda d: d["groups"][0].update(runs=[]), r"groups\[0\]\.runs: expected at least one run"),
        (lambda d: d["groups"].append(d["groups"][0]), r"groups\[1\]: expected one group per \(label, workload, content hash\)"),
    ],
)
def test_damaged_baseline_names_file_and_field(data, tmp_path, damage, message):
    content = _baseline_json(data)
    damage(content)
    path = tmp_path / "damaged.json"
    write_json(path, content)
    with pytest.raises(BaselineError, match=message) as err:
        load_baseline(path)
    assert str(err.value).startswith(f"{path}: ")


def test_corrupt_json_names_line_and_column(tmp_path):
    path = tmp_path / "b.json"
    path.write_text('{"format": "llm-batching-bench baseline",\n  "groups": [1, }')
    with pytest.raises(BaselineError, match=rf"{path}: not valid JSON \(line 2, column"):
        load_baseline(path)


def test_truncated_file_is_an_error(data, tmp_path):
    path = tmp_path / "b.json"
    path.write_text((data / "base.json").read_text()[:5000])  # a write cut short
    with pytest.raises(BaselineError, match="not valid JSON"):
        load_baseline(path)


def test_binary_and_missing_files(tmp_path):
    path = tmp_path / "b.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BaselineError, match="not a text file"):
        load_baseline(path)
    with pytest.raises(BaselineError, match="no such baseline file"):
        load_baseline(tmp_path / "absent.json")


def test_baseline_errors_are_result_errors():
    # the CLI turns ResultError into one line on stderr and exit code 2
    assert issubclass(BaselineError, ResultError)


def test_corrupt_result_directory(copy_case):
    case = copy_case("padded")
    (case / "continuous__ci-mixed" / "summary.json").write_text("{not json")
    with pytest.raises(ResultError, match=r"summary.json: not valid JSON \(line 1"):
        load_runs([case])


def test_partial_result_directory(copy_case):
    case = copy_case("padded")
    (case / "continuous__ci-mixed" / "requests.parquet").unlink()
    with pytest.raises(ResultError, match="incomplete result directory, missing requests.parquet"):
        load_reference([case])


def test_wrong_version_result_directory(copy_case):
    case = copy_case("padded")
    manifest = case / "continuous__ci-mixed" / "manifest.json"
    write_json(manifest, {**json.loads(manifest.read_text()), "format_version": 2})
    with pytest.raises(ResultError, match=r"manifest.json: result format version 2"):
        load_runs([case])


def test_unmeasurable_requests_name_the_file(runs):
    import dataclasses

    run = runs("padded")[0]
    requests = run.requests.copy()
    requests.loc[3, "output_tokens"] = 999
    with pytest.raises(BaselineError, match=r"requests.parquet: .*request 'r003': output_tokens = 999"):
        Baseline.from_runs([dataclasses.replace(run, requests=requests)])
