"""The `bench` command: a thin argparse front; each subcommand lives in bench/commands/.

To add a subcommand, write bench/commands/<name>.py with register(subparsers) and add its
module to COMMANDS. Bad input (unknown engine, bad workload spec, unreadable result) ends in
one line on stderr and exit code 2; anything unexpected keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

COMMANDS = [
    "bench.commands.run",
    "bench.commands.compare",
    "bench.commands.sweep",
    "bench.commands.report",
    "bench.commands.list",
    "bench.commands.serve",
    "bench.commands.load",
    "bench.commands.baseline",
    "bench.commands.table",
]

EXIT_BAD_INPUT, EXIT_INTERRUPTED = 2, 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bench",
        description="Measure what continuous batching buys over padded and static batching.",
    )
    from bench.manifest import harness_version

    parser.add_argument("--version", action="version", version=f"%(prog)s {harness_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    return parser


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    from bench.results import ResultError
    from engines.request import ConfigError, RequestError
    from workloads.errors import WorkloadError

    return (ConfigError, RequestError, WorkloadError, ResultError)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bad_input = _bad_input_errors()
    try:
        return int(args.func(args) or 0)
    except bad_input as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
