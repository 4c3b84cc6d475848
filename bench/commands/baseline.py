"""`bench baseline save | check | versus | ladder`: regression verdicts and A/B comparisons
from saved results, without re-running anything.

Exit codes (bench.regression.ExitCode): 0 no regression, 1 regression (ladder: a rule or a
counter broke), 2 invalid input (corrupt, partial or wrong-version files; bad options),
3 not comparable (other machine, model, workload or harness version; --insist compares anyway).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

EXIT_HELP = (
    "Exit code: 0 no regression, 1 regression, 2 invalid input (corrupt, partial or "
    "wrong-version files), 3 not comparable."
)


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="save a regression baseline, or judge result directories against one",
        description="Regression verdicts from saved result directories. " + EXIT_HELP,
    )
    sub = p.add_subparsers(dest="baseline_command", metavar="ACTION", required=True)

    s = sub.add_parser("save", help="save result directories as a baseline file",
                       description="Bundle what a verdict needs from result directories (repeats "
                       "grouped by label and workload) into one versioned JSON file.")
    s.add_argument("results", nargs="+", type=Path, metavar="RESULT_DIR",
                   help="result directories, or folders of them (a bench compare output)")
    s.add_argument("-o", "--out", type=Path, required=True, metavar="FILE", help="baseline file to write")
    s.set_defaults(func=_save_main)

    c = sub.add_parser("check", help="judge result directories against a baseline",
                       description="Per metric: baseline, current, change, significance, mark. " + EXIT_HELP)
    c.add_argument("results", nargs="+", type=Path, metavar="RESULT_DIR")
    c.add_argument("--baseline", type=Path, required=True, metavar="PATH",
                   help="a baseline file (bench baseline save), or a result directory or folder "
                   "of them to use as the baseline")
    _add_verdict_options(c)
    c.set_defaults(func=_check_main)

    v = sub.add_parser("versus", help="A/B: each engine against a reference engine measured beside it",
                       description="Per engine and metric: the reference engine's value, the engine's, "
                       "change, significance, mark, with the tests of `check` (engine counters left "
                       "out). Exit code: 0 no engine worse, 1 an engine significantly worse beyond a "
                       "threshold, 2 invalid input, 3 not comparable.")
    v.add_argument("reference", metavar="REFERENCE", help="label of the engine to judge the others against, e.g. continuous")
    v.add_argument("results", nargs="+", type=Path, metavar="RESULT_DIR",
                   help="result directories, or folders of them (a bench compare output)")
    _add_verdict_options(v)
    v.set_defaults(func=_versus_main)

    la = sub.add_parser("ladder", help="CI gate: ratios between engines of one run, exact counters",
                        description="Check ratio rules between engines measured in the same run "
                        "(never absolute times) and, with --baseline, the deterministic engine "
                        "counters exactly. Exit code: 0 pass, 1 a rule or a counter broke, "
                        "2 invalid input, 3 not comparable.")
    la.add_argument("results", nargs="+", type=Path, metavar="RESULT_DIR")
    la.add_argument("--baseline", type=Path, metavar="PATH",
                    help="committed baseline file whose counters must match exactly")
    la.add_argument("--rules", type=Path, metavar="FILE",
                    help='JSON {"rules": [{"metric", "numerator", "denominator", "min", "max", "why"}]} '
                    "(default: the in-repo ladder's rules)")
    la.add_argument("--insist", action="store_true", help="compare counters of runs that differ")
    la.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown summary here")
    la.set_defaults(func=_ladder_main)


def _add_verdict_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threshold", action="append", default=[], metavar="METRIC=PCT",
                   help="override a metric's threshold, e.g. ttft_ms.p99=30 (repeatable)")
    p.add_argument("--alpha", type=float, default=None,
                   help="significance level (default 0.01)")
    p.add_argument("--insist", action="store_true",
                   help="compare runs marked not comparable (other machine, model, ...) anyway")
    p.add_argument("--markdown", type=Path, metavar="FILE", help="also write the Markdown summary here")


def write_text(path: Path, text: str) -> None:
    """Atomic (temp file, then rename), so a CI step never posts half a summary; plain open()
    so the file gets the usual permissions (umask), as a file a later CI step reads should."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def save(results: list[Path], out: Path) -> Path:
    from bench.regression import load_runs, save_baseline

    return save_baseline(load_runs(results), out)


def _judged(judge, results: list[Path], thresholds, alpha, insist, markdown):
    """judge(runs, thresholds=, alpha=, insist=) with the command line's options; writes the
    Markdown when asked."""
    from bench.regression import load_runs, parse_threshold
    from bench.regression.verdict import DEFAULT_ALPHA

    limits = dict(parse_threshold(t) for t in thresholds)
    verdict = judge(load_runs(results), thresholds=limits, insist=insist,
                    alpha=DEFAULT_ALPHA if alpha is None else alpha)
    if markdown is not None:
        write_text(markdown, verdict.to_markdown())
    return verdict


def check(results: list[Path], baseline: Path, *, thresholds: list[str] = (),
          alpha: float | None = None, insist: bool = False, markdown: Path | None = None):
    """The verdict of RESULT_DIRs against a baseline."""
    from bench.regression import evaluate

    return _judged(lambda runs, **kw: evaluate(runs, baseline, **kw), results, thresholds, alpha, insist, markdown)


def versus(results: list[Path], reference: str, *, thresholds: list[str] = (),
           alpha: float | None = None, insist: bool = False, markdown: Path | None = None):
    """The A/B verdict of every engine in RESULT_DIRs against the reference engine."""
    from bench.regression import compare_engines

    return _judged(lambda runs, **kw: compare_engines(runs, reference, **kw), results, thresholds, alpha, insist,
                   markdown)


def ladder(results: list[Path], *, baseline: Path | None = None, rules: Path | None = None,
           insist: bool = False, markdown: Path | None = None):
    from bench.regression import DEFAULT_RULES, check_ladder, load_rules, load_runs

    verdict = check_ladder(load_runs(results), rules=load_rules(rules) if rules else DEFAULT_RULES,
                           baseline=baseline, insist=insist)
    if markdown is not None:
        write_text(markdown, verdict.to_markdown())
    return verdict


def _save_main(args: argparse.Namespace) -> int:
    path = save(args.results, args.out)
    print(f"baseline saved: {path}")
    return 0


def _check_main(args: argparse.Namespace) -> int:
    verdict = check(args.results, args.baseline, thresholds=args.threshold, alpha=args.alpha,
                    insist=args.insist, markdown=args.markdown)
    print(verdict.to_markdown())
    return int(verdict.exit_code)


def _versus_main(args: argparse.Namespace) -> int:
    verdict = versus(args.results, args.reference, thresholds=args.threshold, alpha=args.alpha,
                     insist=args.insist, markdown=args.markdown)
    print(verdict.to_markdown())
    return int(verdict.exit_code)


def _ladder_main(args: argparse.Namespace) -> int:
    verdict = ladder(args.results, baseline=args.baseline, rules=args.rules, insist=args.insist,
                     markdown=args.markdown)
    print(verdict.to_markdown())
    return int(verdict.exit_code)
