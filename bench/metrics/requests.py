"""One request's timestamps, read from a row of requests.parquet and checked.

Every latency metric is a small function of a `RequestTimes`; reading and checking the frame
happens once, here, so a broken record fails with its request id and field named instead of
turning into a silently wrong percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from bench.records import REQUEST_COLUMNS

STATUSES = ("ok", "error", "timeout", "cancelled", "rejected")


@dataclass(frozen=True)
class RequestTimes:
    """Times in ns from the run start. t_first / t_last: first and last chunk's arrival
    (None when no token arrived). chunk_times / chunk_tokens: int64 arrays, one entry a chunk."""

    request_id: str
    status: str
    t_arrival: int
    t_send: int | None
    t_first: int | None
    t_last: int | None
    prompt_tokens: int
    output_tokens: int
    chunk_times: np.ndarray
    chunk_tokens: np.ndarray

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _optional_int(value) -> int | None:
    # parquet hands nullable ints back as float NaN or pd.NA
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    return int(value)


def _int_array(value) -> np.ndarray:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.zeros(0, dtype=np.int64)
    return np.asarray(value, dtype=np.int64)


class RecordError(ValueError):
    """A request record that cannot be measured: the message names request, field and value."""


def _fail(request_id: str, field: str, value, expected: str):
    raise RecordError(f"requests frame, request {request_id!r}: {field} = {value!r}, expected {expected}")


def _parse_row(row: dict) -> RequestTimes:
    rid = str(row["request_id"])
    status = row["status"]
    if status not in STATUSES:
        _fail(rid, "status", status, f"one of {', '.join(STATUSES)}")
    times = _int_array(row["chunk_times_ns"])
    tokens = _int_array(row["chunk_tokens"])
    if len(times) != len(tokens):
        _fail(rid, "chunk_tokens", list(tokens), f"one count per chunk time ({len(times)} chunk times)")
    if len(times) and (np.diff(times) < 0).any():
        _fail(rid, "chunk_times_ns", list(times), "non-decreasing times")
    if (tokens < 1).any():
        _fail(rid, "chunk_tokens", list(tokens), "every chunk carrying at least 1 token")
    output_tokens = int(row["output_tokens"])
    if output_tokens != int(tokens.sum()):
        _fail(rid, "output_tokens", output_tokens, f"the sum of chunk_tokens ({int(tokens.sum())})")
    first_token = _optional_int(row["first_token_ns"])
    if len(times) and first_token != int(times[0]):
        _fail(rid, "first_token_ns", first_token, f"the first chunk's time ({int(times[0])})")
    send = _optional_int(row["send_ns"])
    if status == "ok":
        if send is None:
            _fail(rid, "send_ns", send, "a time for an ok request")
        if len(times) and times[0] < send:
            _fail(rid, "first_token_ns", int(times[0]), f"a time at or after send_ns ({send})")
    # t_last is the last token's arrival (METRICS.md), not finish_ns: an HTTP stream may
    # close a little after its last chunk
    t_last = int(times[-1]) if len(times) else None
    if status == "ok" and t_last is None:
        t_last = _optional_int(row["finish_ns"])  # an ok request with no tokens ends at finish
        if t_last is None:
            _fail(rid, "finish_ns", None, "a time for an ok request")
    return RequestTimes(
        request_id=rid,
        status=status,
        t_arrival=int(row["arrival_ns"]),
        t_send=send,
        t_first=int(times[0]) if len(times) else None,
        t_last=t_last,
        prompt_tokens=int(row["prompt_tokens"]),
        output_tokens=output_tokens,
        chunk_times=times,
        chunk_tokens=tokens,
    )


def parse_requests(frame: pd.DataFrame) -> list[RequestTimes]:
    """Read and check every row of a requests frame (columns of bench.records.RequestRecord)."""
    missing = [c for c in REQUEST_COLUMNS if c not in frame.columns]
    if missing:
        raise RecordError(f"requests frame: missing columns {missing}")
    duplicated = frame["request_id"][frame["request_id"].duplicated()]
    if len(duplicated):
        raise RecordError(f"requests frame: request_id {duplicated.iloc[0]!r} appears more than once")
    return [_parse_row(row) for row in frame.to_dict("records")]
