"""Do engines that ran the same greedy workload produce the same tokens?

With greedy sampling every engine should emit the same output for the same prompt; where
they differ, it is either a bug or numerics (a different kernel or batch shape flips a
near-tie, and the rest of that output then follows another path). The numbers here say how
often and where, against one run taken as the reference.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MAX_EXAMPLES = 5


def _token_ids(frame: pd.DataFrame, label: str) -> tuple[dict[str, list[int]], dict[str, int]]:
    """Output ids of ok requests that kept them, by request id, and counts of what was not."""
    missing = [c for c in ("request_id", "status", "output_token_ids") if c not in frame.columns]
    if missing:
        raise ValueError(f"run {label!r}: requests frame is missing columns {missing}")
    duplicated = frame["request_id"][frame["request_id"].duplicated()]
    if len(duplicated):
        raise ValueError(f"run {label!r}: request_id {duplicated.iloc[0]!r} appears more than once")
    ids, skipped = {}, {"not_ok": 0, "no_token_ids": 0}
    for rid, status, tokens in zip(frame["request_id"], frame["status"], frame["output_token_ids"]):
        if status != "ok":
            skipped["not_ok"] += 1
        elif tokens is None or (isinstance(tokens, float) and np.isnan(tokens)):
            skipped["no_token_ids"] += 1
        else:
            ids[str(rid)] = [int(t) for t in tokens]
    return ids, skipped


def _first_mismatch(ref: list[int], other: list[int]) -> int | None:
    for i, (a, b) in enumerate(zip(ref, other)):
        if a != b:
            return i
    return None if len(ref) == len(other) else min(len(ref), len(other))


def compare_pair(reference: dict[str, list[int]], other: dict[str, list[int]]) -> dict:
    """Token-level agreement of `other` with `reference` over the requests both hold.

    token_agreement: positions where both outputs hold the same token / positions in the
    longer of the two, summed over requests. With equal lengths (greedy, end-of-sequence
    ignored) that is the share of the reference's tokens matched; a missing or extra token
    counts as a disagreement. None when no request is comparable."""
    common = sorted(set(reference) & set(other))
    equal = agreeing = positions = 0
    mismatches = []
    for rid in common:
        ref, out = reference[rid], other[rid]
        agreeing += sum(a == b for a, b in zip(ref, out))
        positions += max(len(ref), len(out))
        where = _first_mismatch(ref, out)
        if where is None:
            equal += 1
        elif len(mismatches) < MAX_EXAMPLES:
            mismatches.append({
                "request_id": rid,
                "position": where,
                "reference_token": ref[where] if where < len(ref) else None,
                "token": out[where] if where < len(out) else None,
            })
    return {
        "requests_compared": len(common),
        "requests_equal": equal,
        "token_agreement": agreeing / positions if positions else None,
        "first_mismatches": mismatches,
    }


def compare_outputs(runs: dict[str, pd.DataFrame], reference: str) -> dict[str, dict]:
    """Compare every run's output tokens with the reference run's, request by request.

    runs: label -> requests frame (bench.records columns). Returns label -> the summary's
    `consistency` block, for every label but the reference: {reference, requests_compared,
    requests_equal, token_agreement, first_mismatches (up to 5: request id, position, both
    tokens; None where an output had ended), requests_skipped}. Only requests that are ok
    and kept output_token_ids in both runs are compared; requests_skipped counts, in this
    run, those that were not ok, kept no ids, or are not ok-with-ids in the reference.
    """
    if reference not in runs:
        raise ValueError(f"consistency: reference {reference!r} is not among the runs {sorted(runs)}")
    ref_ids, _ = _token_ids(runs[reference], reference)
    result = {}
    for label, frame in runs.items():
        if label == reference:
            continue
        ids, skipped = _token_ids(frame, label)
        skipped["not_in_reference"] = len(set(ids) - set(ref_ids))
        result[label] = {"reference": reference, **compare_pair(ref_ids, ids), "requests_skipped": skipped}
    return result
