"""The spread of a per-run value over repeats (`--repeat N`): how much to trust one run.

CV (coefficient of variation) = sample standard deviation / mean; a CV of 0.03 says runs of
the same code differ by about 3%, so a threshold under that would flag noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.results import RunResult


@dataclass(frozen=True)
class Spread:
    n: int
    min: float | None
    median: float | None
    max: float | None
    cv: float | None  # None with fewer than 2 values

    @classmethod
    def of(cls, values: list[float | None]) -> Spread:
        v = np.asarray([x for x in values if x is not None], dtype=np.float64)
        if len(v) == 0:
            return cls(0, None, None, None, None)
        mean = float(v.mean())
        cv = float(v.std(ddof=1) / mean) if len(v) >= 2 and mean else None
        return cls(len(v), float(v.min()), float(np.median(v)), float(v.max()), cv)


def repeat_spreads(runs: list[RunResult], key: str = "output_tok_per_s") -> dict[str, Spread]:
    """Spread of summary[key] over repeats, by "label · workload" (the runs of one label and
    workload content), for the runner to print after `--repeat N`, baseline or not."""
    values: dict[tuple, list] = {}
    for run in runs:
        workload = run.manifest.get("workload") or {}
        group = (run.label, workload.get("name") or "?", workload.get("content_hash"))
        values.setdefault(group, []).append(run.summary.get(key))
    names = [(label, name) for label, name, _ in values]
    out = {}
    for (label, name, content), v in values.items():
        tag = f"#{(content or '?')[:8]}" if names.count((label, name)) > 1 else ""
        out[f"{label} · {name}{tag}"] = Spread.of(v)
    return out
