"""Engine specs and sizes as typed on the command line."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.engine_spec import parse_bytes, parse_engine_spec, parse_value
from engines.request import ConfigError


def test_name_only_and_options():
    assert parse_engine_spec("paged").name == "paged" and parse_engine_spec("paged").options == {}
    spec = parse_engine_spec(" paged:block_size=32,prefix_caching=true,kv=0.5,attention=reference ")
    assert spec.name == "paged" and spec.text == "paged:block_size=32,prefix_caching=true,kv=0.5,attention=reference"
    assert spec.options == {"block_size": 32, "prefix_caching": True, "kv": 0.5, "attention": "reference"}
    assert type(spec.options["block_size"]) is int


def test_values_keep_colons():
    spec = parse_engine_spec("openai:url=http://127.0.0.1:8000,model=m")
    assert spec.options == {"url": "http://127.0.0.1:8000", "model": "m"}


@pytest.mark.parametrize("text, message", [
    (":a=1", "no engine name"),
    ("paged:", "no KEY=VALUE"),
    ("paged:block_size", "expected KEY=VALUE, got 'block_size'"),
    ("paged:=3", "expected KEY=VALUE"),
    ("paged:a=1,a=2", "'a' given twice"),
    ("paged:block-size=3", "not a valid name"),
])
def test_bad_specs(text, message):
    with pytest.raises(ConfigError, match=message):
        parse_engine_spec(text)


@pytest.mark.parametrize("text, value", [
    ("true", True), ("False", False), ("12", 12), ("-3", -3), ("0.25", 0.25), ("1e-3", 0.001),
    ("bf16", "bf16"), ("", ""), ("1.2.3", "1.2.3"),
])
def test_parse_value(text, value):
    assert parse_value(text) == value and type(parse_value(text)) is type(value)


@given(st.integers(min_value=-10**12, max_value=10**12))
def test_integers_round_trip(n):
    assert parse_value(str(n)) == n


@pytest.mark.parametrize("text, n", [
    ("2GiB", 2 * 2**30), ("512MiB", 512 * 2**20), ("1.5GB", 1_500_000_000), ("4096", 4096),
    ("64 kib", 65536), ("1e9B", 10**9), ("3TB", 3 * 10**12),
])
def test_parse_bytes(text, n):
    assert parse_bytes(text) == n


@pytest.mark.parametrize("text", ["2G", "lots", "-1GiB", "0", "GiB", "0.1"])
def test_parse_bytes_refuses(text):
    with pytest.raises(ConfigError, match="memory size"):
        parse_bytes(text)
