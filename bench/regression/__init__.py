"""Performance regression verdicts that CI can trust.

    rules.py       the metric table: unit, better direction, default threshold, kind
    samples.py     per-request values from requests.parquet, and their deterministic reduction
    stats.py       significance: Mann-Whitney U, bootstrap of a quantile, Welch over repeats
    comparable.py  which runs measured the same thing (experiment) in the same place (environment)
    baseline.py    the evidence of a set of runs, and the versioned baseline file
    spread.py      min / median / max / CV of per-run values over repeats
    verdict.py     rows, marks and the exit code; A/B of engines measured side by side
    markdown.py    the verdict for CI logs, pull-request comments and the HTML report
    ladder.py      our own CI gate: same-run ratios between engines and exact counters
"""

from bench.regression.baseline import (
    Baseline,
    BaselineError,
    load_baseline,
    load_reference,
    load_runs,
    save_baseline,
)
from bench.regression.ladder import DEFAULT_RULES, LadderVerdict, RatioRule, check_ladder, load_rules
from bench.regression.marks import BETTER, NO_SIGNIFICANT_CHANGE, NOT_COMPARABLE, WITHIN_THRESHOLD, WORSE
from bench.regression.rules import METRICS, parse_threshold
from bench.regression.spread import Spread, repeat_spreads
from bench.regression.verdict import ExitCode, Row, Verdict, compare_engines, compare_to_baseline, evaluate

__all__ = [
    "BETTER",
    "Baseline",
    "BaselineError",
    "DEFAULT_RULES",
    "ExitCode",
    "LadderVerdict",
    "METRICS",
    "NOT_COMPARABLE",
    "NO_SIGNIFICANT_CHANGE",
    "RatioRule",
    "Row",
    "Spread",
    "Verdict",
    "WITHIN_THRESHOLD",
    "WORSE",
    "check_ladder",
    "compare_engines",
    "compare_to_baseline",
    "evaluate",
    "load_baseline",
    "load_reference",
    "load_rules",
    "load_runs",
    "parse_threshold",
    "repeat_spreads",
    "save_baseline",
]
