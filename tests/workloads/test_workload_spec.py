from __future__ import annotations

import json

import pytest

from workloads.build import build_workload
from workloads.errors import WorkloadError
from workloads.parse import parse_spec
from workloads.presets import PRESETS
from workloads.spec import WorkloadSpec, with_concurrency, with_rate

TINY = dict(vocab_size=2048, max_model_len=2048)


def test_preset_with_overrides():
    spec = parse_spec("quick:num_requests=32,arrival=gamma(4,0.5),prompt=mix(0.5*fixed(10),0.5*fixed(20))")
    assert spec.source == "synthetic" and spec.preset == "quick" and spec.name == "quick"
    assert spec.num_requests == 32 and spec.arrival == "gamma(4,0.5)"
    assert spec.prompt == "mix(0.5*fixed(10),0.5*fixed(20))"
    assert spec.output == "uniform(8,128)"  # from the preset


def test_source_with_keys_fills_defaults():
    spec = parse_spec("synthetic:num_requests=200,prompt=lognormal(512,256),arrival=poisson(4),seed=1")
    assert (spec.num_requests, spec.seed, spec.output, spec.fit_context) == (200, 1, "uniform(8,128)", "clip")
    assert spec.name == "synthetic" and spec.preset is None
    assert parse_spec("azure-code").arrival == "trace"
    assert parse_spec("generic-trace:path=x.csv,prompt_column=a,output_column=b").arrival == "offline"


def test_a_trace_preset_under_another_arrival_process_drops_its_speedup():
    spec = parse_spec("azure-code:arrival=poisson(4)")
    assert (spec.arrival, spec.speedup) == ("poisson(4)", 1.0)
    trace, paced = build_workload("azure-code", **TINY), build_workload(spec, **TINY)
    assert [r.prompt_ids for r in paced.requests] == [r.prompt_ids for r in trace.requests]
    assert "trace timestamps replaced by arrival=poisson(4)" in paced.notes


def test_none_unsets_a_key():
    assert parse_spec("azure-code").limit == 200
    assert parse_spec("azure-code:limit=none").limit is None


def test_the_recorded_spec_rebuilds_the_same_workload():
    for text in ["quick:arrival=poisson(3),prefix_fraction=0.5,prefix_tokens=8", "burstgpt", "sharegpt"]:
        wl = build_workload(text, **TINY)
        record = json.loads(json.dumps(wl.spec))  # JSON-serialisable, as in the manifest
        assert build_workload(record, **TINY).content_hash == wl.content_hash


def test_dict_and_dataclass_forms():
    a = build_workload({"preset": "quick", "num_requests": 8}, **TINY)
    b = build_workload(WorkloadSpec(source="synthetic", num_requests=8, name="quick"), **TINY)
    assert len(a.requests) == 8 and a.content_hash == b.content_hash


def test_spec_files(tmp_path):
    (tmp_path / "trace.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.5,5,3\n")
    toml = tmp_path / "w.toml"
    toml.write_text('source = "azure-trace"\npath = "trace.csv"\nlimit = 5\nspeedup = 2\n')
    wl = build_workload(str(toml), **TINY)  # path found next to the spec file
    assert len(wl.requests) == 1 and wl.spec["speedup"] == 2.0
    yaml_file = tmp_path / "w.yaml"
    yaml_file.write_text("preset: quick\nnum_requests: 5\narrival: poisson(2)\n")
    assert len(build_workload(yaml_file, **TINY).requests) == 5
    json_file = tmp_path / "w.json"
    json_file.write_text('{"preset": "long-tail", "num_requests": 7}')
    assert parse_spec(f"{json_file}:seed=4").seed == 4 and parse_spec(json_file).num_requests == 7


@pytest.mark.parametrize(
    "text, message",
    [
        ("fast", "'fast' is not a preset, a source or a spec file; presets: quick, anchor-a"),
        ("quick:num_request=5", "unknown key 'num_request'; did you mean 'num_requests'?"),
        ("quick:limit=5", "key 'limit' does not apply to source 'synthetic'"),
        ("quick:num_requests=many", "key 'num_requests': got 'many', expected an integer"),
        ("quick:num_requests=2.5", "key 'num_requests': got '2.5', expected an integer"),
        ("quick:name=a/b", "key 'name': got 'a/b', expected letters, digits and . _ + - only"),
        ("quick:num_requests=0", "key 'num_requests': got 0, expected an integer >= 1"),
        ("quick:seed=-1", "key 'seed': got -1"),
        ("quick:prompt=zipf(2)", "key 'prompt': unknown length distribution 'zipf'"),
        ("quick:arrival=burst(2)", "key 'arrival': unknown arrival process 'burst'"),
        ("quick:arrival=trace", "'trace' replays a trace's timestamps, and source 'synthetic' has none"),
        ("quick:fit_context=squeeze", "key 'fit_context': got 'squeeze', expected one of ('clip', 'drop', 'error')"),
        ("quick:num_requests", "'num_requests' is not key=value"),
        ("quick:seed=1,seed=2", "key 'seed' given twice"),
        ("quick:source=azure-trace", "preset 'quick' has source 'synthetic', not 'azure-trace'"),
        ("quick:prefix_fraction=0.5", "a shared prefix needs both > 0, or neither"),
        ("quick:prefix_fraction=1.5,prefix_tokens=4", "key 'prefix_fraction': got 1.5, expected a fraction"),
        ("azure-code:speedup=0", "key 'speedup': got 0.0, expected a factor > 0"),
        ("azure-code:speedup=nan", "key 'speedup': got 'nan', expected a number"),
        ("azure-code:arrival=poisson(2),speedup=2", "key 'speedup': rescales the trace's own arrival times"),
        ("azure-code:start_s=10,end_s=5", "key 'end_s': got 5.0, expected seconds > start_s=10"),
        ("azure-trace:limit=3", "key 'path': got None, expected the path of the file to read"),
        ("generic-trace:path=x.csv,prompt_column=a,output_column=b,end_s=4", "a time window needs arrival_column"),
        ("generic-trace:path=x.csv,output_column=b", "key 'prompt_column': got None, expected a column name"),
        ("mooncake:prefix_tokens=4", "key 'prefix_tokens' does not apply to source 'mooncake-trace'"),
        ("synthetic:source=empirical", "the source is 'synthetic'; do not set 'source' again"),
    ],
)
def test_bad_specs_name_the_key_and_value(text, message):
    with pytest.raises(WorkloadError) as e:
        parse_spec(text)
    assert message in str(e.value)
    assert repr(text) in str(e.value) or text.split(":")[0] in str(e.value)


def test_bad_spec_files(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("source = \n")
    with pytest.raises(WorkloadError, match=r"bad.toml: not valid TOML: .*line 1"):
        parse_spec(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- quick\n")
    with pytest.raises(WorkloadError, match="list.yaml: expected a table of workload keys, got list"):
        parse_spec(listed)
    typed = tmp_path / "typed.toml"
    typed.write_text('preset = "quick"\nnum_requests = true\n')
    with pytest.raises(WorkloadError, match=r"typed.toml: key 'num_requests': got True, expected an integer"):
        parse_spec(typed)
    with pytest.raises(WorkloadError, match="missing.toml: cannot read the workload spec file"):
        parse_spec(tmp_path / "missing.toml")
    with pytest.raises(WorkloadError, match="trace.csv: a workload spec file ends in .toml"):
        parse_spec(tmp_path / "trace.csv")
    with pytest.raises(WorkloadError, match="unknown preset 'nope'; presets: quick"):
        parse_spec({"preset": "nope"})


def test_with_rate_keeps_the_family_and_the_requests():
    assert with_rate(parse_spec("quick"), 3).arrival == "poisson(3)"
    assert with_rate(parse_spec("quick:arrival=gamma(1,0.25)"), 8).arrival == "gamma(8,0.25)"
    assert with_rate(parse_spec("quick:arrival=constant(1)"), 2.5).arrival == "constant(2.5)"
    with pytest.raises(WorkloadError, match="replays trace timestamps"):
        with_rate(parse_spec("azure-code"), 2)
    with pytest.raises(WorkloadError, match="closed-loop"):
        with_rate(parse_spec("quick:arrival=closed(2)"), 2)
    a = build_workload(with_rate(parse_spec("quick"), 2), **TINY)
    b = build_workload(with_rate(parse_spec("quick"), 9), **TINY)
    assert [r.prompt_ids for r in a.requests] == [r.prompt_ids for r in b.requests]
    assert a.requests[-1].arrival_s > b.requests[-1].arrival_s


def test_with_concurrency():
    spec = with_concurrency(parse_spec("azure-code"), 4)
    assert (spec.arrival, spec.speedup) == ("closed(4)", 1.0)
    wl = build_workload(spec, **TINY)
    assert wl.mode == "closed" and wl.concurrency == 4


def test_every_preset_spec_is_valid():
    for name in PRESETS:
        assert parse_spec(name).preset == name
