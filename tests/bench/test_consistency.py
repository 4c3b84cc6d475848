"""Output consistency between runs, on hand-made request frames."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.consistency import compare_outputs
from bench.records import RequestRecord, requests_frame


def frame(rows) -> pd.DataFrame:
    """rows: [(request_id, status, token ids or None), ...]"""
    return requests_frame([
        RequestRecord(request_id=rid, arrival_ns=0, prompt_tokens=3, max_new_tokens=4, status=status,
                      output_tokens=len(ids or []), output_token_ids=ids)
        for rid, status, ids in rows
    ])


REFERENCE = frame([
    ("a", "ok", [1, 2, 3, 4]),
    ("b", "ok", [5, 6, 7]),
    ("c", "ok", [9, 9]),
    ("d", "error", None),
    ("e", "ok", None),  # ids not kept
])
OTHER = frame([
    ("a", "ok", [1, 2, 3, 4]),  # equal
    ("b", "ok", [5, 8, 7]),  # differs at position 1
    ("c", "ok", [9, 9, 9]),  # one token longer
    ("d", "ok", [1]),  # failed in the reference
    ("e", "ok", [3]),  # the reference kept no ids
    ("f", "timeout", [4]),
])


def test_hand_made_comparison():
    result = compare_outputs({"ref": REFERENCE, "other": OTHER}, reference="ref")
    assert list(result) == ["other"]
    c = result["other"]
    assert c["reference"] == "ref"
    assert c["requests_compared"] == 3  # a, b, c
    assert c["requests_equal"] == 1  # a
    # agreeing positions 4 + 2 + 2 over 4 + 3 + 3 (c counts its extra token against it)
    assert c["token_agreement"] == pytest.approx(0.8)
    assert c["first_mismatches"] == [
        {"request_id": "b", "position": 1, "reference_token": 6, "token": 8},
        {"request_id": "c", "position": 2, "reference_token": None, "token": 9},
    ]
    assert c["requests_skipped"] == {"not_ok": 1, "no_token_ids": 0, "not_in_reference": 2}


def test_every_run_but_the_reference_is_compared():
    shorter = frame([("a", "ok", [1, 2]), ("b", "ok", [5, 6, 7]), ("c", "ok", [9, 9])])
    result = compare_outputs({"ref": REFERENCE, "same": REFERENCE, "short": shorter}, reference="ref")
    assert set(result) == {"same", "short"}
    assert result["same"]["token_agreement"] == 1.0
    assert result["same"]["requests_equal"] == 3 and result["same"]["first_mismatches"] == []
    assert result["same"]["requests_skipped"] == {"not_ok": 1, "no_token_ids": 1, "not_in_reference": 0}
    # a: 2 of 4 positions agree; b, c fully: (2 + 3 + 2) / (4 + 3 + 2)
    assert result["short"]["token_agreement"] == pytest.approx(7 / 9)
    assert result["short"]["first_mismatches"] == [
        {"request_id": "a", "position": 2, "reference_token": 3, "token": None}
    ]


def test_nothing_comparable_gives_null_agreement():
    failed = frame([("a", "error", None), ("b", "ok", None)])
    c = compare_outputs({"ref": REFERENCE, "x": failed}, reference="ref")["x"]
    assert (c["requests_compared"], c["requests_equal"], c["token_agreement"]) == (0, 0, None)
    assert c["requests_skipped"] == {"not_ok": 1, "no_token_ids": 1, "not_in_reference": 0}


def test_frames_read_back_from_parquet(tmp_path):
    REFERENCE.to_parquet(tmp_path / "ref.parquet", index=False)
    OTHER.to_parquet(tmp_path / "other.parquet", index=False)
    runs = {"ref": pd.read_parquet(tmp_path / "ref.parquet"), "other": pd.read_parquet(tmp_path / "other.parquet")}
    assert compare_outputs(runs, "ref") == compare_outputs({"ref": REFERENCE, "other": OTHER}, "ref")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match=r"reference 'nope' is not among the runs \['ref'\]"):
        compare_outputs({"ref": REFERENCE}, reference="nope")
    twice = frame([("a", "ok", [1]), ("a", "ok", [2])])
    with pytest.raises(ValueError, match="run 'x': request_id 'a' appears more than once"):
        compare_outputs({"ref": REFERENCE, "x": twice}, reference="ref")
    with pytest.raises(ValueError, match=r"run 'x': requests frame is missing columns \['output_token_ids'\]"):
        compare_outputs({"ref": REFERENCE, "x": OTHER.drop(columns=["output_token_ids"])}, reference="ref")
