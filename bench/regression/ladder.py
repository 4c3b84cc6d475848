"""The CI gate on the engine ladder: ratios between engines of one run, and exact counters.

CI machines differ, so absolute times against a baseline from another machine prove nothing.
Two things do hold on any machine:
    ratios between engines measured in the same run, on the same machine, minutes apart
        (continuous must out-serve static, static must out-serve naive, ...);
    deterministic engine counters (tokens computed, padding, steps, idle slots, peak KV),
        compared exactly against a baseline committed in the repository.
A change that breaks the ladder fails one or the other.

A rule is a ratio numerator / denominator of one metric between two labels, per workload,
with a floor and/or a ceiling. With repeats, each label's value is its median over repeats.
x / 0 is infinite for x > 0, and 0 / 0 counts as 1 (equal), so "naive pads and static does
not" is `padded_tokens naive / static >= 2`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.regression.baseline import Baseline, BaselineError, load_reference
from bench.regression.rules import COUNTER_NAMES, METRICS_BY_NAME, metric_value, summary_value
from bench.regression.verdict import ExitCode, Verdict, compare_to_baseline
from bench.results import RunResult


@dataclass(frozen=True)
class RatioRule:
    metric: str  # a rate or counter name (bench.regression.rules), or a summary.json key path
    numerator: str  # run label
    denominator: str
    min: float | None = None
    max: float | None = None
    why: str = ""

    def __str__(self) -> str:
        bounds = [f">= {self.min:g}"] if self.min is not None else []
        bounds += [f"<= {self.max:g}"] if self.max is not None else []
        return f"{self.metric}: {self.numerator} / {self.denominator} {' and '.join(bounds)}"


# The in-repo ladder. Counter rules hold on any machine; the throughput floors are set well
# inside the gaps the ladder should give, so that only a broken strategy, not noise, crosses
# them (tune them on the CI workload: `bench baseline ladder` prints every ratio).
DEFAULT_RULES: tuple[RatioRule, ...] = (
    RatioRule("output_tok_per_s", "static", "naive", min=1.0,
              why="static computes no padding and no finished rows"),
    RatioRule("output_tok_per_s", "continuous", "static", min=1.1,
              why="continuous refills a freed slot at the next step"),
    RatioRule("output_tok_per_s", "paged", "continuous", min=0.8,
              why="paging costs little per step (a noisy ratio on CPU: single runs gave 0.83-1.22, medians of three 1.04)"),
    RatioRule("padded_tokens", "naive", "static", min=2, why="only naive pads"),
    RatioRule("wasted_decode_tokens", "naive", "static", min=2,
              why="only naive computes finished rows"),
    RatioRule("tokens_computed", "naive", "static", min=1.2,
              why="padding and finished rows are computed for nothing"),
    RatioRule("idle_slot_steps", "static", "continuous", min=2,
              why="only the batch barrier leaves slots idle while requests wait"),
    RatioRule("steps", "continuous", "static", max=0.95,
              why="refilled slots finish the same work in fewer forwards"),
    RatioRule("engine.kv_utilization_mean", "paged", "continuous", min=1.2,
              why="blocks reserve only what a request has used"),
)


@dataclass
class LadderRow:
    workload: str
    rule: RatioRule
    numerator: float | None
    denominator: float | None
    ratio: float | None
    passed: bool
    note: str = ""


@dataclass
class LadderVerdict:
    rows: list[LadderRow]
    counters: Verdict | None  # exact counters against the committed baseline

    @property
    def failures(self) -> list[LadderRow]:
        return [r for r in self.rows if not r.passed]

    @property
    def exit_code(self) -> ExitCode:
        if self.failures or (self.counters and self.counters.exit_code == ExitCode.REGRESSION):
            return ExitCode.REGRESSION
        if self.counters and self.counters.exit_code == ExitCode.NOT_COMPARABLE:
            return ExitCode.NOT_COMPARABLE
        return ExitCode.OK

    def to_markdown(self) -> str:
        from bench.regression.markdown import render_ladder

        return render_ladder(self)


def _value(run: RunResult, metric: str) -> float | None:
    known = METRICS_BY_NAME.get(metric)
    if known is not None and known.kind != "distribution":
        return metric_value(known, run.summary)
    value = summary_value(run.summary, metric)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _ratio(num: float, den: float) -> float:
    if den == 0:
        return 1.0 if num == 0 else math.copysign(math.inf, num)
    return num / den


def _check(rule: RatioRule, workload: str, by_label: dict[str, list[RunResult]]) -> LadderRow:
    values = []
    for label in (rule.numerator, rule.denominator):
        runs = by_label.get(label)
        if not runs:
            return LadderRow(workload, rule, None, None, None, False,
                             f"no run labelled {label!r} (labels: {', '.join(by_label)})")
        per_run = [_value(r, rule.metric) for r in runs]
        if any(v is None for v in per_run):
            return LadderRow(workload, rule, None, None, None, False,
                             f"{label}: no value for {rule.metric!r} in summary.json")
        values.append(float(np.median(per_run)))
    ratio = _ratio(*values)
    passed = (rule.min is None or ratio >= rule.min) and (rule.max is None or ratio <= rule.max)
    return LadderRow(workload, rule, values[0], values[1], ratio, passed)


def check_ladder(
    runs: list[RunResult],
    *,
    rules: tuple[RatioRule, ...] | list[RatioRule] = DEFAULT_RULES,
    baseline: Baseline | str | Path | list | None = None,
    insist: bool = False,
) -> LadderVerdict:
    """Every rule on every workload of `runs`, and (when a baseline is given) the exact
    engine counters of every (label, workload) against it."""
    current = Baseline.from_runs(runs, "current runs")  # checks status and repeats
    workloads: dict[str, dict[str, list[RunResult]]] = {}
    for run in runs:
        name = (run.manifest.get("workload") or {}).get("name") or "?"
        workloads.setdefault(name, {}).setdefault(run.label, []).append(run)
    rows = [_check(rule, w, by_label) for w, by_label in workloads.items() for rule in rules]
    counters = None
    if baseline is not None:
        reference = baseline if isinstance(baseline, Baseline) else load_reference(baseline)
        counters = compare_to_baseline(current, reference, insist=insist, metrics=list(COUNTER_NAMES))
    return LadderVerdict(rows, counters)


def load_rules(path: str | Path) -> list[RatioRule]:
    """Rules from a JSON file: {"rules": [{"metric", "numerator", "denominator", "min"?,
    "max"?, "why"?}, ...]}. Errors name the file and the rule."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise BaselineError(f"{path}: no such rules file")
    except json.JSONDecodeError as e:
        raise BaselineError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    if not isinstance(data, dict) or not isinstance(data.get("rules"), list) or not data["rules"]:
        raise BaselineError(f'{path}: expected {{"rules": [...]}} with at least one rule')
    rules = []
    for i, item in enumerate(data["rules"]):
        where = f"{path}: rules[{i}]"
        if not isinstance(item, dict):
            raise BaselineError(f"{where}: expected an object, found {item!r}")
        unknown = set(item) - {"metric", "numerator", "denominator", "min", "max", "why"}
        if unknown:
            raise BaselineError(f"{where}: unknown fields {sorted(unknown)}")
        for key in ("metric", "numerator", "denominator"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise BaselineError(f"{where}.{key}: expected a non-empty string, found {item.get(key)!r}")
        for key in ("min", "max"):
            v = item.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise BaselineError(f"{where}.{key}: expected a number, found {v!r}")
        if item.get("min") is None and item.get("max") is None:
            raise BaselineError(f"{where}: needs a min or a max")
        rules.append(RatioRule(**item))
    return rules
