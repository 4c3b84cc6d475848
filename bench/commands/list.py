"""`bench list engines|models|workloads`: what the other commands accept by name."""

from __future__ import annotations

import argparse

WHAT = ("engines", "models", "workloads")


def register(subparsers) -> None:
    p = subparsers.add_parser("list", help="list engines, model presets or workload presets")
    p.add_argument("what", choices=WHAT)
    p.set_defaults(func=main)


def listing(what: str) -> tuple[list[tuple[str, str]], str | None]:
    """(rows of (name, description), a note) for one of WHAT."""
    if what == "engines":
        from engines.registry import ENGINES

        return [(name, f"[{e.kind}] {e.summary}") for name, e in ENGINES.items()], None
    if what == "models":
        try:
            from engines.model.presets import PRESETS
        except ImportError as e:
            return [], f"model presets are not available in this build ({e})"
        rows = [(name, getattr(p, "summary", str(p))) for name, p in PRESETS.items()]
        return rows, "or give --model a local Hugging Face checkpoint directory (weights are never downloaded)"
    from workloads import list_presets

    return list(list_presets().items()), "or give --workload a spec file or an inline spec (docs: workloads)"


def main(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    rows, note = listing(args.what)
    table = Table(show_header=True, header_style="bold")
    table.add_column(args.what[:-1])
    table.add_column("description", overflow="fold")
    for name, text in rows:
        table.add_row(name, text)
    console = Console()
    if rows:
        console.print(table)
    if note:
        console.print(note)
    return 0
