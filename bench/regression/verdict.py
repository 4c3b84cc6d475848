"""The verdict: every (label, workload, metric) of current runs against a baseline, and an exit code.

Each row is marked worse / better / within threshold / no significant change / not comparable
(bench.regression.marks says when).

Exit codes (ExitCode): 0 no regression, 1 regression, 2 invalid input (raised as ResultError,
mapped by the CLI like every other bad input), 3 nothing regressed but some rows could not be
compared. A regression outranks not comparable: it is the more urgent news.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field, replace
from enum import IntEnum
from pathlib import Path

import numpy as np

from bench.regression.baseline import Baseline, Group, load_reference
from bench.regression.comparable import differences
from bench.regression.marks import NOT_COMPARABLE, WITHIN_THRESHOLD, judge
from bench.regression.rules import METRICS, QUANTILES, Metric, resolve_thresholds
from bench.regression.spread import Spread
from bench.regression.stats import Evidence, mean_shift, median_shift, quantile_shift
from bench.results import RunResult
from engines.request import ConfigError

DEFAULT_ALPHA = 0.01


class ExitCode(IntEnum):
    OK = 0
    REGRESSION = 1
    INVALID_INPUT = 2
    NOT_COMPARABLE = 3


@dataclass
class Row:
    label: str
    workload: str
    metric: str
    unit: str
    kind: str
    baseline: float | None
    current: float | None
    change: float | None  # relative: current / baseline - 1 (inf when the baseline is 0)
    p_value: float | None
    ci: tuple[float, float] | None  # confidence interval of the relative change
    threshold: float
    mark: str
    regression: bool = False
    note: str = ""
    test: str = ""  # how significance was judged


@dataclass
class Verdict:
    rows: list[Row]
    spreads: dict[str, tuple[Spread, Spread]]  # output tok/s by group name: baseline, current
    notes: list[str]
    alpha: float
    insist: bool
    baseline_source: str
    baseline_commits: list[str] = field(default_factory=list)
    current_commits: list[str] = field(default_factory=list)
    reference: str | None = None  # an A/B (compare_engines): the engine every other is judged against

    @property
    def regressions(self) -> list[Row]:
        return [r for r in self.rows if r.regression]

    @property
    def not_comparable(self) -> list[Row]:
        return [r for r in self.rows if r.mark == NOT_COMPARABLE]

    @property
    def within_threshold(self) -> list[Row]:
        return [r for r in self.rows if r.mark == WITHIN_THRESHOLD]

    @property
    def exit_code(self) -> ExitCode:
        if self.regressions:
            return ExitCode.REGRESSION
        if self.not_comparable:
            return ExitCode.NOT_COMPARABLE
        return ExitCode.OK

    def to_markdown(self) -> str:
        from bench.regression.markdown import render_verdict

        return render_verdict(self)

    def to_report_dict(self) -> dict:
        """{"markdown", "rows", "title"} for reports.write_report(..., verdict=...)."""
        from bench.regression.markdown import display_row

        title = "Regression verdict" if self.reference is None else f"A/B against {self.reference}"
        return {"markdown": self.to_markdown(), "rows": [display_row(r) for r in self.rows], "title": title}


def check_alpha(alpha: float) -> None:
    if not (0 < alpha < 1):
        raise ConfigError(f"alpha must be between 0 and 1, got {alpha!r}")


def _relative(base: float, cur: float) -> float:
    if base:
        return cur / base - 1
    return 0.0 if cur == base else math.copysign(math.inf, cur - base)


def _seed(group: Group, metric: Metric) -> int:
    # per row, not per call order: adding a metric never changes another row's verdict
    return zlib.crc32(f"{group.label}\0{group.workload}\0{metric.name}".encode())


class _Skip(Exception):
    """Nothing to compare on either side (e.g. TPOT of single-token outputs)."""


def _sides(metric: Metric, base: Group, cur: Group):
    """(baseline values, current values, problem): what each side offers, and why the two
    cannot be compared (None when they can)."""
    if metric.kind == "distribution":
        name = metric.source[0]
        return _problem(metric, base, cur, base.samples[name], cur.samples[name])
    table = "rates" if metric.kind == "rate" else "counters"
    raw = [[getattr(r, table)[metric.name] for r in g.runs] for g in (base, cur)]
    b, c = ([v for v in values if v is not None] for values in raw)
    partial = [0 < len(v) < len(r) for v, r in zip((b, c), raw)]
    return _problem(metric, base, cur, b, c, partial)


def _problem(metric: Metric, base: Group, cur: Group, b, c, partial=(False, False)):
    if len(b) == 0 and len(c) == 0:
        raise _Skip
    for side, values, some in (("baseline", b, partial[0]), ("current runs", c, partial[1])):
        if len(values) == 0:
            return b, c, f"no value in the {side}"
        if some and metric.kind == "counter":
            return b, c, f"missing in some {side} repeats"
        if metric.kind == "counter" and len(set(values)) > 1:
            spread = f"{min(values)}..{max(values)}"
            return b, c, f"varies between {side} repeats ({spread}): not deterministic"
    if metric.name == "goodput_req_per_s" and base.slo != cur.slo:
        return b, c, f"different SLOs: {base.slo} (baseline) vs {cur.slo} (current)"
    return b, c, None


def _point(metric: Metric, values) -> float:
    if metric.kind == "distribution":
        return float(np.quantile(values, QUANTILES[metric.statistic]))
    return float(np.mean(values))


def _across_runs(metric: Metric, base: Group, cur: Group, per_request: Evidence, alpha: float):
    """Requests of one run share its fate (a slow machine, a stall), so per-request values
    alone overstate the evidence. With repeats on both sides the change must also stand out
    from the run-to-run spread of the run's own percentile (Welch over runs). Both tests must
    reject: p is the larger p-value, the CI spans both intervals."""
    b, c = ([r.percentiles[metric.name] for r in g.runs] for g in (base, cur))
    b, c = [v for v in b if v is not None], [v for v in c if v is not None]
    if len(b) < 2 or len(c) < 2 or per_request.p_value is None:
        return Evidence(per_request.p_value, per_request.ci,
                        f"{per_request.method} (requests only: repeat runs to test run-to-run noise)")
    runs = mean_shift(b, c, alpha=alpha)
    ci = per_request.ci
    if runs.ci is not None and ci is not None:
        ci = (min(ci[0], runs.ci[0]), max(ci[1], runs.ci[1]))
    method = f"{per_request.method} and {runs.method} over runs"
    return Evidence(max(per_request.p_value, runs.p_value), ci, method, over_runs=runs.over_runs)


def _evidence(metric: Metric, base: Group, cur: Group, b, c, alpha: float) -> Evidence:
    if metric.kind == "counter":
        return Evidence(None, None, "exact")
    if metric.kind == "rate":
        return mean_shift(b, c, alpha=alpha)
    seed = _seed(base, metric)
    if metric.statistic == "p50":
        per_request = median_shift(b, c, alpha=alpha, seed=seed)
    else:
        per_request = quantile_shift(b, c, QUANTILES[metric.statistic], alpha=alpha, seed=seed)
    return _across_runs(metric, base, cur, per_request, alpha)


def _row(metric: Metric, base: Group, cur: Group, threshold: float, alpha: float, blocked) -> Row:
    b, c, problem = _sides(metric, base, cur)
    bv = _point(metric, b) if len(b) else None
    cv = _point(metric, c) if len(c) else None
    row = Row(base.label, base.workload + base.tag, metric.name, metric.unit, metric.kind, bv, cv,
              None, None, None, threshold, NOT_COMPARABLE)
    if problem or blocked:
        row.note = problem or blocked
        return row
    row.change = _relative(bv, cv)
    ev = _evidence(metric, base, cur, b, c, alpha)
    row.p_value, row.ci, row.test = ev.p_value, ev.ci, ev.method
    if metric.kind == "counter":
        significant = cv != bv  # exact: no noise to test against
    else:
        significant = ev.p_value is not None and ev.p_value < alpha
    # an interval blind to run-to-run noise (one run a side) cannot show a change no worse
    # than a threshold: a slow run would go unnoticed
    row.mark, row.regression = judge(metric, row.change, significant, threshold, ev.ci if ev.over_runs else None)
    if ev.p_value is None and metric.kind != "counter":
        row.note = ev.method
    elif row.regression and metric.better == "none":
        row.note = "changed: the engine now does different work"
    return row


def _keys(diffs: list[str]) -> str:
    return ", ".join(d.split(":")[0] for d in diffs[:2]) + (", ..." if len(diffs) > 2 else "")


def _group_notes(base: Group, cur: Group, exp: list, env: list, timing: bool, insist: bool) -> list[str]:
    notes = []
    relevant = exp + env if timing else exp  # the machine does not matter to counters
    if insist and relevant:
        notes.append(f"{base.name}: compared although runs differ (--insist): {'; '.join(relevant)}")
    elif exp:
        notes.append(f"{base.name}: not comparable, different experiment: {'; '.join(exp)}")
    elif env and timing:
        notes.append(f"{base.name}: timings not comparable, different environment: "
                     f"{'; '.join(env)}; counters are still compared")
    if timing and min(len(base.runs), len(cur.runs)) < 2:
        notes.append(f"{base.name}: {len(base.runs)} baseline and {len(cur.runs)} current runs: "
                     f"latency tests see request-to-request noise only and throughput is not "
                     f"tested; repeat runs (--repeat 3) to test against run-to-run noise")
    return notes


def _compare_group(base: Group, cur: Group, metrics, thresholds, alpha, insist, notes,
                   compared: str | None = None) -> list[Row]:
    """compared: a key prefix whose differences are the point of the comparison (an A/B's
    "engine."), not a different experiment."""
    exp = differences(base.identity.experiment, cur.identity.experiment)
    if compared is not None:
        exp = [d for d in exp if not d.startswith(compared)]
    env = differences(base.identity.environment, cur.identity.environment)
    notes += _group_notes(base, cur, exp, env, any(m.timing for m in metrics), insist)
    open_loop = base.identity.experiment.get("workload.mode") == "open"
    skipped, rows = [], []
    for metric in metrics:
        if open_loop and metric.schedule_dependent:
            if any(r.counters[metric.name] is not None for g in (base, cur) for r in g.runs):
                skipped.append(metric.name)
            continue
        blocked = None
        if not insist and exp:
            blocked = f"different experiment ({_keys(exp)})"
        elif not insist and env and metric.timing:
            blocked = f"different environment ({_keys(env)})"
        try:
            rows.append(_row(metric, base, cur, thresholds[metric.name], alpha, blocked))
        except _Skip:
            pass
    if skipped:
        notes.append(f"{base.name}: open-loop workload: engine counters follow arrival timing, "
                     f"not compared ({', '.join(skipped)})")
    return rows


def _match(base: Group, candidates: list[Group]) -> Group | None:
    """The current group of the same label and workload name: the one with the same workload
    content when there are several, else the only one (a changed workload is then reported
    as a different experiment, not as a missing run)."""
    same = [g for g in candidates if (g.label, g.workload) == (base.label, base.workload)]
    exact = [g for g in same if g.content_hash == base.content_hash]
    if exact:
        return exact[0]
    return same[0] if len(same) == 1 else None


def _commits(baseline: Baseline) -> list[str]:
    commits = [r.git_commit[:12] + ("+dirty" if r.git_dirty else "") for g in baseline.groups
               for r in g.runs if r.git_commit]
    return list(dict.fromkeys(commits))


def compare_to_baseline(
    current: list[RunResult] | Baseline,
    baseline: list[RunResult] | Baseline,
    *,
    thresholds: dict[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    insist: bool = False,
    metrics: list[str] | None = None,
) -> Verdict:
    """Compare every (label, workload) of the baseline with the current runs of the same
    label and workload. thresholds: relative, by metric name (see rules.resolve_thresholds);
    metrics: restrict to these metric names (default: all)."""
    check_alpha(alpha)
    if not isinstance(current, Baseline):
        current = Baseline.from_runs(current, "current runs")
    if not isinstance(baseline, Baseline):
        baseline = Baseline.from_runs(baseline, "baseline runs")
    limits = resolve_thresholds(thresholds)
    chosen = METRICS if metrics is None else [m for m in METRICS if m.name in set(metrics)]
    unknown = set(metrics or ()) - {m.name for m in METRICS}
    if unknown:
        raise ConfigError(f"unknown metrics {sorted(unknown)}")
    rows: list[Row] = []
    notes: list[str] = []
    spreads = {}
    unmatched = list(current.groups)
    for base in baseline.groups:
        cur = _match(base, unmatched)
        if cur is None:
            missing = "in the baseline, missing from the current runs"
            rows.append(Row(base.label, base.workload + base.tag, "*", "", "", None, None, None, None,
                            None, 0.0, NOT_COMPARABLE, note=missing))
            continue
        unmatched.remove(cur)
        rows += _compare_group(base, cur, chosen, limits, alpha, insist, notes)
        spreads[base.name] = tuple(
            Spread.of([r.rates["output_tok_per_s"] for r in g.runs]) for g in (base, cur)
        )
    notes += [f"{cur.name}: not in the baseline, not compared" for cur in unmatched]
    return Verdict(rows, spreads, notes, alpha, insist, baseline.source,
                   _commits(baseline), _commits(current))


def compare_engines(
    runs: list[RunResult],
    reference: str,
    *,
    thresholds: dict[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    insist: bool = False,
) -> Verdict:
    """A/B: every engine's runs against the `reference` engine's runs of the same workload
    (label as in the result directories, e.g. the folder of one `bench compare`), with the
    tests and marks of a regression verdict. Engine name and options are what an A/B varies,
    so they do not make the runs a different experiment; anything else that differs does.
    Engine counters are left out: different engines do different work by design.
    A row is "worse" when the engine is significantly and beyond the threshold worse than
    the reference; the exit code is then 1, as for a regression."""
    check_alpha(alpha)
    groups = Baseline.from_runs(runs, "result directories").groups
    references = [g for g in groups if g.label == reference]
    if not references:
        labels = sorted({g.label for g in groups})
        raise ConfigError(f"no runs labelled {reference!r} to compare against; the labels here: {labels}")
    engines = [g for g in groups if g.label != reference]
    if not engines:
        raise ConfigError(f"only {reference!r} in these result directories: nothing to compare with it")
    limits = resolve_thresholds(thresholds)
    metrics = [m for m in METRICS if m.kind != "counter"]
    rows: list[Row] = []
    notes: list[str] = []
    spreads = {}
    for cur in engines:
        same = [g for g in references if g.workload == cur.workload]
        base = next((g for g in same if g.content_hash == cur.content_hash), same[0] if len(same) == 1 else None)
        if base is None:
            rows.append(Row(cur.label, cur.workload + cur.tag, "*", "", "", None, None, None, None, None, 0.0,
                            NOT_COMPARABLE, note=f"no {reference} runs of this workload"))
            continue
        base = replace(base, label=cur.label, tag=cur.tag)  # rows and notes name the engine judged
        rows += _compare_group(base, cur, metrics, limits, alpha, insist, notes, compared="engine.")
        spreads[cur.name] = tuple(Spread.of([r.rates["output_tok_per_s"] for r in g.runs]) for g in (base, cur))
    ref = Baseline(references, reference)
    others = Baseline(engines, "engines")
    return Verdict(rows, spreads, notes, alpha, insist, ref.source, _commits(ref), _commits(others),
                   reference=reference)


def evaluate(
    current_runs: list[RunResult],
    baseline_path: str | Path | list[str | Path],
    *,
    thresholds: dict[str, float] | None = None,
    alpha: float = DEFAULT_ALPHA,
    insist: bool = False,
) -> Verdict:
    """The verdict of `bench compare --baseline PATH`: PATH is a saved baseline file or result
    directories. Bad input raises bench.results.ResultError (exit code 2)."""
    reference = load_reference(baseline_path)
    return compare_to_baseline(
        current_runs, reference, thresholds=thresholds, alpha=alpha, insist=insist
    )
