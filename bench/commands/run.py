"""`bench run`: one engine on one workload -> one result directory."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.commands.options import add_all, json_object, run_options_from_args

EXIT_CODES = {"complete": 0, "failed": 1, "interrupted": 130}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run one engine on one workload",
        description="Run one engine on one workload and write one result directory "
        "(manifest.json, requests/steps/device.parquet, summary.json). Exit code: 0 complete, "
        "1 the engine failed (the partial run is written), 2 bad input, 130 interrupted (written).",
    )
    p.add_argument("--engine", required=True, help="engine spec: NAME or NAME:KEY=VALUE,... (see `bench list engines`)")
    p.add_argument("--workload", default="quick", help="preset name, spec file or inline spec (see `bench list workloads`; default: quick)")
    p.add_argument("--workload-json", type=json_object, help=argparse.SUPPRESS)
    p.add_argument("--label", help="name in tables and reports (default: the engine spec)")
    p.add_argument("--out", type=Path, help="result directory to create (default: results/run-<label>__<workload>-<UTC time>)")
    p.add_argument("--manifest-extra-json", type=json_object, help=argparse.SUPPRESS)
    add_all(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench.naming import default_out_dir, safe_name, workload_dir_name
    from bench.session import run_one
    from bench.table import print_table, say

    options = run_options_from_args(args)
    workload = args.workload_json if args.workload_json is not None else args.workload
    out = args.out
    if out is None:
        stamp = default_out_dir("run")
        out = stamp.parent / f"{stamp.name}-{safe_name(args.label or args.engine)}__{workload_dir_name(args.workload)}"
    result = run_one(
        args.engine, args.model, workload, out,
        label=args.label, manifest_extra=args.manifest_extra_json, **options.as_kwargs(),
    )
    console = Console()
    print_table([result], console)
    run = result.manifest["run"]
    if run["status"] != "complete":
        if run.get("traceback"):
            print(run["traceback"], file=sys.stderr)
        say(console, f"run {run['status']}: {run['error']}")
    say(console, f"result: {result.path}")
    return EXIT_CODES.get(run["status"], 1)
