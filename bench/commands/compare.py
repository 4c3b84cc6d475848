"""`bench compare`: several engines on the same workloads, one table and one report."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.options import add_all, positive_int, run_options_from_args, split_specs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "compare",
        help="run several engines on the same workloads, print a table, write report.html",
        description="Run every engine on every workload (interleaved), each into "
        "OUT/<label>__<workload>/, check greedy outputs agree across engines, print a table "
        "and write OUT/report.html. Ctrl-C keeps finished runs and the partial one. Exit code: "
        "0 all runs complete, 1 a run failed, 2 bad input, 130 interrupted; with --baseline or "
        "--versus, the verdict's code.",
    )
    p.add_argument("--engines", nargs="+", action="extend", metavar="SPEC", help="engine specs, space- or comma-separated (default: naive static continuous paged)")
    p.add_argument("--workloads", "--workload", nargs="+", action="extend", metavar="SPEC", help="workload specs (default: quick)")
    p.add_argument("--labels", nargs="+", action="extend", metavar="LABEL", help="one label per engine (default: the engine specs)")
    p.add_argument("--out", type=Path, help="output folder (default: results/compare-<UTC time>/)")
    p.add_argument("--repeat", type=positive_int, default=1, help="run each engine N times, interleaved (directories __r1.. __rN)")
    p.add_argument("--isolate", action="store_true", help="each run in a fresh `python -m bench run` process (peers that keep GPU memory cannot affect the next engine)")
    p.add_argument("--title", help="report title")
    g = p.add_argument_group("regression")
    g.add_argument("--baseline", type=Path, nargs="+", metavar="PATH", help="a saved baseline file (bench baseline save, or --save-baseline) or result directories to judge these runs against")
    g.add_argument("--save-baseline", type=Path, metavar="FILE", help="save these runs as a baseline file")
    g.add_argument("--threshold", action="append", default=[], metavar="METRIC=PCT", help="override a metric's regression threshold (repeatable)")
    g.add_argument("--versus", metavar="LABEL", help="A/B: judge every other engine against this one's runs of the same workload (bench baseline versus); not with --baseline")
    g.add_argument("--alpha", type=float, help="significance level of the --baseline or --versus verdict (default 0.01)")
    g.add_argument("--insist", action="store_true", help="compare even runs marked not comparable (other machine, model, ...)")
    add_all(p)
    p.set_defaults(func=main)


def thresholds_from_args(items: list[str]) -> dict | None:
    if not items:
        return None
    from bench.regression.rules import parse_threshold

    return dict(parse_threshold(item) for item in items)


def main(args: argparse.Namespace) -> int:
    from bench.compare import compare

    result = compare(
        split_specs(args.engines) if args.engines else None,
        split_specs(args.workloads) if args.workloads else None,
        args.model,
        args.out,
        run_options_from_args(args),
        labels=args.labels,
        repeat=args.repeat,
        isolate=args.isolate,
        title=args.title,
        baseline=args.baseline,
        versus=args.versus,
        alpha=args.alpha,
        save_baseline=args.save_baseline,
        thresholds=thresholds_from_args(args.threshold),
        insist=args.insist,
    )
    return result.exit_code
