"""Generated lengths: from two length distributions, or sampled from a file of real lengths.

Request ids are r00000, r00001, ... in generation order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workloads.context_fit import fits
from workloads.distributions import LengthDistribution
from workloads.draft import Draft, DraftRequest
from workloads.errors import WorkloadError
from workloads.tables import parse_length, read_rows


def request_id(i: int) -> str:
    return f"r{i:05d}"


def _at_least_one(lengths: np.ndarray, what: str, dist: LengthDistribution, notes: list[str]) -> np.ndarray:
    low = int((lengths < 1).sum())
    if low:
        notes.append(f"raised {low} {what} lengths below 1 to 1 (drawn from {dist.describe()})")
    return np.maximum(lengths, 1)


def draft_synthetic(
    n: int, prompt: LengthDistribution, output: LengthDistribution, rng: np.random.Generator
) -> Draft:
    """All prompt lengths are drawn, then all output lengths, from the same generator."""
    notes: list[str] = []
    prompts = _at_least_one(prompt.sample(rng, n), "prompt", prompt, notes)
    outputs = _at_least_one(output.sample(rng, n), "output", output, notes)
    requests = [
        DraftRequest(request_id(i), int(p), int(o)) for i, (p, o) in enumerate(zip(prompts, outputs))
    ]
    return Draft(requests, notes)


def read_lengths(path: Path, prompt_column: str, output_column: str) -> list[tuple[int, int]]:
    """(prompt, output) pairs of a lengths file; zero lengths become 1 here (counted by caller)."""
    pairs = [
        (
            parse_length(row[prompt_column], path, lineno, prompt_column),
            parse_length(row[output_column], path, lineno, output_column),
        )
        for lineno, row in read_rows(path, [prompt_column, output_column])
    ]
    if not pairs:
        raise WorkloadError(f"{path}: empty lengths file, no data rows")
    return pairs


def draft_empirical(
    n: int,
    path: Path,
    prompt_column: str,
    output_column: str,
    rng: np.random.Generator,
    *,
    max_model_len: int,
    drop_too_long: bool,
) -> Draft:
    """Sample n rows of a lengths file uniformly with replacement. Rows are drawn whole, so the
    correlation between a prompt's length and its output's length is kept.

    With drop_too_long the rows that cannot fit the context are removed before sampling (the
    sample is then of the rows that fit, which the notes say); otherwise the usual context
    fitting applies afterwards.
    """
    pairs = read_lengths(path, prompt_column, output_column)
    notes = []
    zeros = sum(1 for p, o in pairs if p == 0 or o == 0)
    if zeros:
        notes.append(f"raised {zeros} zero lengths in {path.name} to 1 token")
        pairs = [(max(p, 1), max(o, 1)) for p, o in pairs]
    if drop_too_long:
        fitting = [(p, o) for p, o in pairs if fits(p, o, max_model_len)]
        if not fitting:
            raise WorkloadError(
                f"{path}: none of its {len(pairs)} rows fits max_model_len={max_model_len}"
            )
        if len(fitting) < len(pairs):
            notes.append(
                f"sampled from the {len(fitting)} of {len(pairs)} rows of {path.name} that fit "
                f"max_model_len={max_model_len} (fit_context='drop')"
            )
        pairs = fitting
    rows = rng.integers(0, len(pairs), size=n)
    requests = [DraftRequest(request_id(i), *pairs[j]) for i, j in enumerate(rows)]
    return Draft(requests, notes)
