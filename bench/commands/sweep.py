"""`bench sweep`: engines x load points of one workload, for throughput-vs-latency curves."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.options import add_all, run_options_from_args, split_specs


def number_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 1,2,4")
    if not values:
        raise argparse.ArgumentTypeError("no values given")
    return values


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a workload at several arrival rates or concurrencies (throughput-latency curves)",
        description="Run each engine on one workload at several load points: open-loop arrival "
        "rates (--rates; the workload's arrival family is kept: poisson, gamma, constant) or "
        "closed-loop concurrencies (--concurrency). Same prompts at every point. Writes "
        "OUT/<label>__<workload>__<variable>-<value>/ per run, a table and OUT/report.html "
        "with throughput-vs-latency curves.",
    )
    p.add_argument("--engines", "--engine", nargs="+", action="extend", metavar="SPEC", required=True, help="engine specs, space- or comma-separated")
    p.add_argument("--workload", default="quick", help="workload spec (default: quick)")
    points = p.add_mutually_exclusive_group(required=True)
    points.add_argument("--rates", type=number_list, help="arrival rates in requests/s, e.g. 1,2,4")
    points.add_argument("--concurrency", type=number_list, help="closed-loop client counts, e.g. 1,4,16")
    p.add_argument("--name", help="sweep name in the report (default: <workload>-<variable>)")
    p.add_argument("--labels", nargs="+", action="extend", metavar="LABEL", help="one label per engine")
    p.add_argument("--out", type=Path, help="output folder (default: results/sweep-<UTC time>/)")
    p.add_argument("--isolate", action="store_true", help="each run in a fresh process")
    p.add_argument("--title", help="report title")
    add_all(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.sweep import sweep

    variable, values = ("rate", args.rates) if args.rates is not None else ("concurrency", args.concurrency)
    result = sweep(
        split_specs(args.engines), args.workload, variable, values, args.model, args.out,
        run_options_from_args(args), labels=args.labels, name=args.name, isolate=args.isolate,
        title=args.title,
    )
    return result.exit_code
