"""Mooncake FAST'25 traces (Qin et al., USENIX FAST 2025), JSON lines.

Keys: timestamp (integer ms from the trace start), input_length, output_length, hash_ids (one
id per 512-token block of the prompt; equal leading ids are a shared prefix; the last block is
usually partial). Each hash id becomes a block of token ids derived from (seed, id), so equal
ids give equal blocks and a prefix cache sees the sharing the trace recorded.

prompt_scale shrinks the blocks with the prompts (1/16: 32-token blocks), so a small model
keeps the trace's sharing structure; 512 * prompt_scale must be a whole number of tokens, and
should be a multiple of the engine's KV block size for prefix caching to see whole blocks.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from workloads.draft import Draft
from workloads.errors import WorkloadError
from workloads.tables import parse_length, parse_time, read_rows
from workloads.traces.select import ReplayOptions, TraceRow, select_rows

TIME, PROMPT, OUTPUT, HASHES = "timestamp", "input_length", "output_length", "hash_ids"
BLOCK_TOKENS = 512


def _hash_ids(value, path: Path, lineno: int, prompt_len: int) -> tuple[int, ...]:
    where = f"{path}:{lineno}: key {HASHES!r}"
    if not isinstance(value, list) or not all(
        isinstance(h, int) and not isinstance(h, bool) and h >= 0 for h in value
    ):
        raise WorkloadError(f"{where}: got {str(value)[:60]!r}, expected a list of non-negative integers")
    need = -(-max(prompt_len, 1) // BLOCK_TOKENS)  # a zero prompt is raised to 1 token later
    if len(value) < need:
        raise WorkloadError(
            f"{where}: {len(value)} ids cover {len(value) * BLOCK_TOKENS} tokens, but "
            f"{PROMPT} is {prompt_len}: expected at least ceil({prompt_len}/{BLOCK_TOKENS}) = {need} ids"
        )
    return tuple(value)


def _rows(path: Path) -> Iterator[TraceRow]:
    for lineno, row in read_rows(path, [TIME, PROMPT, OUTPUT, HASHES]):
        prompt_len = parse_length(row[PROMPT], path, lineno, PROMPT)
        yield TraceRow(
            lineno,
            parse_time(row[TIME], path, lineno, TIME) / 1000.0,
            prompt_len,
            parse_length(row[OUTPUT], path, lineno, OUTPUT),
            hash_ids=_hash_ids(row[HASHES], path, lineno, prompt_len),
            t_raw=str(row[TIME]),
        )


def block_tokens(prompt_scale: float) -> int:
    tokens = BLOCK_TOKENS * prompt_scale
    if tokens < 1 or tokens != int(tokens):
        raise WorkloadError(
            f"prompt_scale={prompt_scale:g}: Mooncake blocks of {BLOCK_TOKENS} tokens would become "
            f"{tokens:g} tokens; expected a prompt_scale that makes them a whole number >= 1 "
            "(e.g. 0.5, 0.25, 0.0625)"
        )
    return int(tokens)


def load_mooncake(path: Path, opts: ReplayOptions) -> Draft:
    tokens = block_tokens(opts.prompt_scale)
    draft = select_rows(_rows(path), path, TIME, opts)
    return replace(draft, block_tokens=tokens)
