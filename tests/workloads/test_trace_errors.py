"""Every bad trace input gives a WorkloadError naming the file, line, column and value."""

from __future__ import annotations

import json

import pytest

from workloads.build import build_workload
from workloads.errors import WorkloadError
from workloads.tables import read_rows

TINY = dict(vocab_size=2048, max_model_len=2048)
HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def azure_error(tmp_path, text: str, extra: str = "") -> str:
    path = tmp_path / "trace.csv"
    path.write_text(text)
    with pytest.raises(WorkloadError) as e:
        build_workload(f"azure-trace:path={path}{extra}", **TINY)
    assert str(path) in str(e.value)
    return str(e.value)


def test_error_is_a_value_error():
    assert issubclass(WorkloadError, ValueError)


def test_missing_column(tmp_path):
    msg = azure_error(tmp_path, "TIMESTAMP,ContextTokens\n2023-11-16 18:17:03.9799600,5\n")
    assert "trace.csv:1: missing column(s) 'GeneratedTokens'" in msg
    assert "the header has 'TIMESTAMP', 'ContextTokens'" in msg


def test_negative_length(tmp_path):
    msg = azure_error(tmp_path, HEADER + "2023-11-16 18:17:03.0,5,3\n2023-11-16 18:17:04.0,-7,3\n")
    assert "trace.csv:3: column 'ContextTokens': got '-7', expected a non-negative integer token count" in msg


def test_non_numeric_length(tmp_path):
    msg = azure_error(tmp_path, HEADER + "2023-11-16 18:17:03.0,5,lots\n")
    assert "trace.csv:2: column 'GeneratedTokens': got 'lots', expected a number" in msg
    msg = azure_error(tmp_path, HEADER + "2023-11-16 18:17:03.0,5.5,3\n")
    assert "column 'ContextTokens': got '5.5', expected a non-negative integer" in msg


def test_bad_timestamp(tmp_path):
    msg = azure_error(tmp_path, HEADER + "yesterday,5,3\n")
    assert "trace.csv:2: column 'TIMESTAMP': got 'yesterday', expected a datetime like" in msg


def test_timestamps_going_backwards(tmp_path):
    msg = azure_error(
        tmp_path,
        HEADER + "2023-11-16 18:17:03.5,5,3\n2023-11-16 18:17:04.0,5,3\n2023-11-16 18:17:03.9,5,3\n",
    )
    assert "trace.csv:4: column 'TIMESTAMP': timestamp '2023-11-16 18:17:03.9' goes backwards" in msg
    assert "earlier than line 3" in msg and "expected rows sorted by time" in msg


def test_empty_trace_and_empty_after_filtering(tmp_path):
    assert "empty trace, no data rows" in azure_error(tmp_path, HEADER)
    assert "empty file" in azure_error(tmp_path, "")
    msg = azure_error(tmp_path, HEADER + "2023-11-16 18:17:03.5,5,3\n", ",start_s=10")
    assert "no rows left: 1 read, 1 before start_s=10" in msg
    path = tmp_path / "burst.csv"
    path.write_text("Timestamp,Request tokens,Response tokens\n1,0,0\n2,0,0\n")
    with pytest.raises(WorkloadError, match="no rows left: all 2 rows dropped \\(0 request and 0 response"):
        build_workload(f"burstgpt-trace:path={path}", **TINY)


def test_all_requests_dropped_by_the_context(tmp_path):
    path = tmp_path / "trace.csv"
    path.write_text(HEADER + "2023-11-16 18:17:03.5,5000,3\n")
    with pytest.raises(WorkloadError, match="all 1 requests exceed max_model_len=2048"):
        build_workload(f"azure-trace:path={path},fit_context=drop", **TINY)


def test_wrong_field_count(tmp_path):
    msg = azure_error(tmp_path, HEADER + "2023-11-16 18:17:03.5,5\n")
    assert "trace.csv:2: 2 fields, expected 3" in msg


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(WorkloadError, match="key 'path': file .*nope.csv' not found"):
        build_workload(f"azure-trace:path={tmp_path / 'nope.csv'}", **TINY)
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(WorkloadError, match="folder.csv: cannot read the file"):
        list(read_rows(folder, ["a"]))
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"TIMESTAMP,ContextTokens,GeneratedTokens\n\xff\xfe\x00\x81,1,2\n")
    with pytest.raises(WorkloadError, match="binary.csv: not a UTF-8 text file"):
        build_workload(f"azure-trace:path={binary}", **TINY)


def test_unknown_extension(tmp_path):
    path = tmp_path / "trace.parquet"
    path.write_text("x")
    with pytest.raises(WorkloadError, match=r"trace.parquet: cannot tell the file format .*'.parquet'"):
        build_workload(f"generic-trace:path={path},prompt_column=a,output_column=b", **TINY)


def test_jsonl_errors(tmp_path):
    path = tmp_path / "m.jsonl"
    good = {"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}
    cases = [
        ("{not json", "m.jsonl:2: not valid JSON"),
        ("[1, 2]", "m.jsonl:2: expected a JSON object per line, got list"),
        (json.dumps({"timestamp": 5, "input_length": 3}), "m.jsonl:2: missing key(s) 'output_length', 'hash_ids'"),
        (json.dumps({**good, "hash_ids": [0]}), "m.jsonl:2: key 'hash_ids': 1 ids cover 512 tokens, but input_length is 600"),
        (json.dumps({**good, "hash_ids": "0,1"}), "key 'hash_ids': got '0,1', expected a list of non-negative integers"),
        (json.dumps({**good, "output_length": -1}), "m.jsonl:2: column 'output_length': got -1, expected a non-negative"),
        (json.dumps({**good, "timestamp": "soon"}), "m.jsonl:2: column 'timestamp': got 'soon', expected a number"),
    ]
    for line, message in cases:
        path.write_text(json.dumps(good) + "\n" + line + "\n")
        with pytest.raises(WorkloadError) as e:
            build_workload(f"mooncake-trace:path={path}", **TINY)
        assert message in str(e.value), line


def test_mooncake_prompt_scale_must_keep_whole_blocks():
    with pytest.raises(WorkloadError, match=r"key 'prompt_scale': .*would become 153.6 tokens"):
        build_workload("mooncake:prompt_scale=0.3", **TINY)
