"""`bench report`: rebuild the HTML report from saved result directories only."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "report",
        help="rebuild report.html from saved result directories",
        description="Build one self-contained HTML report from result directories (or folders "
        "holding them, e.g. a `bench compare` output folder). Nothing is re-run.",
    )
    p.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="result directories or folders of them")
    p.add_argument("-o", "--output", type=Path, help="report file (default: DIR/report.html for one folder of runs, else ./report.html)")
    p.add_argument("--title", help="report title")
    p.set_defaults(func=main)


def default_report_path(dirs: list[Path]) -> Path:
    """A lone folder of runs gets its report inside it, as `bench compare` does; anything
    else (a single run, several folders) in the current directory, so no run is touched."""
    if len(dirs) == 1 and dirs[0].is_dir() and not (dirs[0] / "manifest.json").exists():
        return dirs[0] / "report.html"
    return Path("report.html")


def build_report(dirs: list[Path], output: Path | None = None, *, title: str | None = None) -> Path:
    import reports
    from bench.results import find_runs, load_run

    runs = [load_run(path) for path in find_runs(dirs)]
    return reports.write_report(runs, output or default_report_path(dirs), title=title)


def main(args: argparse.Namespace) -> int:
    path = build_report(args.dirs, args.output, title=args.title)
    print(f"report: {path}")
    return 0
