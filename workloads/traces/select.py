"""From trace rows to a Draft: the replay options every trace format shares.

In order: check time order, cut the time window (seconds after the first row), take the first
`limit` rows of it, move the first kept request to t = 0, divide times by `speedup`, scale
lengths, raise zero lengths to 1. Each change that alters the trace is written into the notes.
Rows are streamed and reading stops at the end of the window or at the limit, so the rest of a
large file is never read (nor checked).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from workloads.draft import Draft, DraftRequest
from workloads.errors import WorkloadError


@dataclass
class TraceRow:
    lineno: int
    t_s: float | None  # seconds on the trace's own clock; None: the trace has no times
    prompt_len: int
    output_len: int
    hash_ids: tuple[int, ...] | None = None
    t_raw: str = ""  # the timestamp as written, for error messages


@dataclass(frozen=True)
class ReplayOptions:
    limit: int | None = None
    start_s: float = 0.0
    end_s: float | None = None
    speedup: float = 1.0
    prompt_scale: float = 1.0
    output_scale: float = 1.0

    @property
    def windowed(self) -> bool:
        return self.start_s > 0 or self.end_s is not None


def select_rows(
    rows: Iterable[TraceRow],
    path: Path,
    time_column: str,
    opts: ReplayOptions,
    drop: Callable[[TraceRow], bool] | None = None,
    drop_reason: str = "",
) -> Draft:
    """`drop` marks rows that are not requests at all (BurstGPT's failed ones): they are left
    out before anything else, so limit and window count only real requests."""
    kept: list[TraceRow] = []
    read = before = 0
    dropped: list[int] = []
    t0 = prev = None
    for row in rows:
        if drop is not None and drop(row):
            dropped.append(row.lineno)
            continue
        read += 1
        if row.t_s is None:
            if opts.windowed:
                raise WorkloadError(f"{path}: start_s/end_s need arrival times, and this trace has none")
        else:
            if prev is not None and row.t_s < prev.t_s:
                raise WorkloadError(
                    f"{path}:{row.lineno}: column {time_column!r}: timestamp {row.t_raw!r} goes "
                    f"backwards ({row.t_s - t0:.6g} s after the first row, earlier than line "
                    f"{prev.lineno} at {prev.t_s - t0:.6g} s); expected rows sorted by time"
                )
            prev = row
            t0 = row.t_s if t0 is None else t0
            since_first = row.t_s - t0
            if since_first < opts.start_s:
                before += 1
                continue
            if opts.end_s is not None and since_first >= opts.end_s:
                break
        kept.append(row)
        if opts.limit is not None and len(kept) == opts.limit:
            break
    if read == 0 and not dropped:
        raise WorkloadError(f"{path}: empty trace, no data rows")
    if read == 0:
        raise WorkloadError(f"{path}: no rows left: all {len(dropped)} rows dropped ({drop_reason})")
    if not kept:
        end = f"{opts.end_s:g}" if opts.end_s is not None else "end"
        raise WorkloadError(
            f"{path}: no rows left: {read} read, {before} before start_s={opts.start_s:g}, "
            f"none in the window [{opts.start_s:g}, {end}) s after the first request"
        )
    draft = _to_draft(kept, before, t0, opts)
    if dropped:
        draft.notes.insert(
            0, f"dropped {len(dropped)} rows ({drop_reason}), first at line {dropped[0]}"
        )
    return draft


def _to_draft(kept: list[TraceRow], before: int, t0: float | None, opts: ReplayOptions) -> Draft:
    notes = []
    if opts.windowed:
        end = f"{opts.end_s:g}" if opts.end_s is not None else "end"
        notes.append(
            f"time window [{opts.start_s:g}, {end}) s after the first request: skipped {before} "
            f"rows before it"
        )
    if opts.limit is not None and len(kept) == opts.limit:
        where = "of the window" if opts.windowed else "of the trace"
        notes.append(f"kept the first {opts.limit} rows {where} (limit={opts.limit}); later rows not read")
    times = None
    if kept[0].t_s is not None:
        first = kept[0].t_s
        times = [(r.t_s - first) / opts.speedup for r in kept]
        if first > t0:
            notes.append(f"arrivals shifted by -{first - t0:.6g} s: the first kept request arrives at 0")
        if opts.speedup != 1.0:
            notes.append(
                f"arrivals sped up {opts.speedup:g}x (times divided by {opts.speedup:g}): span "
                f"{kept[-1].t_s - first:.6g} s in the trace -> {times[-1]:.6g} s"
            )
    prompts = [_scaled(r.prompt_len, opts.prompt_scale) for r in kept]
    outputs = [_scaled(r.output_len, opts.output_scale) for r in kept]
    for what, scale in (("prompt", opts.prompt_scale), ("output", opts.output_scale)):
        if scale != 1.0:
            notes.append(f"{what} lengths scaled by {scale:g} (rounded up)")
    zeros = sum(1 for p, o in zip(prompts, outputs) if p == 0 or o == 0)
    if zeros:
        notes.append(f"raised {zeros} zero prompt or output lengths to 1 token")
    requests = [
        DraftRequest(
            id=f"line{r.lineno}",
            prompt_len=max(p, 1),
            output_len=max(o, 1),
            arrival_s=None if times is None else times[i],
            hash_ids=r.hash_ids,
        )
        for i, (r, p, o) in enumerate(zip(kept, prompts, outputs))
    ]
    return Draft(requests, notes)


def _scaled(length: int, scale: float) -> int:
    return length if scale == 1.0 else math.ceil(length * scale)
