"""`bench sweep`: one workload at several load points (arrival rates or closed-loop
concurrencies) per engine, for throughput-vs-latency curves.

Each point is the same workload with only its arrival process replaced
(workloads.with_rate / with_concurrency keep the very same prompts and lengths), run like a
comparison: engines interleaved per point, every run tagged manifest["sweep"] = {name,
variable, value} so the report can draw one curve per engine.
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from bench.compare import (
    Comparison,
    PlannedRun,
    check_engines,
    execute_keeping_finished,
    finish,
)
from bench.naming import default_out_dir, safe_name
from bench.session import RunOptions
from engines.request import ConfigError
from workloads import parse_spec, with_concurrency, with_rate

VARIABLES = ("rate", "concurrency")


def plan_sweep(
    engines: list[str],
    workload: str,
    variable: str,
    values: list[float],
    *,
    labels: list[str] | None = None,
    name: str | None = None,
) -> list[PlannedRun]:
    if variable not in VARIABLES:
        raise ConfigError(f"sweep variable {variable!r}: expected one of {VARIABLES}")
    if not values:
        raise ConfigError(f"no {variable} values to sweep")
    if len(set(values)) != len(values):
        raise ConfigError(f"sweep {variable} values repeat: {values}")
    labels = check_engines(engines, labels)
    base = parse_spec(workload)
    sweep_name = name or f"{base.name}-{variable}"
    plan = []
    for value in values:
        if variable == "rate":
            if not value > 0:
                raise ConfigError(f"sweep rate {value!r}: expected requests per second > 0")
            spec = with_rate(base, float(value))
        else:
            if int(value) != value or value < 1:
                raise ConfigError(f"sweep concurrency {value!r}: expected an integer >= 1")
            value = int(value)
            spec = with_concurrency(base, value)
        point = f"{safe_name(base.name)}__{variable}-{value:g}"
        extra = {"sweep": {"name": sweep_name, "variable": variable, "value": value}}
        for engine, label in zip(engines, labels):
            title = f"{base.name} {variable}={value:g}"
            plan.append(PlannedRun(engine, label, spec.to_dict(), f"{safe_name(label)}__{point}", point, extra, title))
    return plan


def sweep(
    engines: list[str],
    workload: str,
    variable: str,
    values: list[float],
    model: str = "tiny",
    out_dir: Path | None = None,
    options: RunOptions | None = None,
    *,
    labels: list[str] | None = None,
    name: str | None = None,
    isolate: bool = False,
    title: str | None = None,
    console: Console | None = None,
) -> Comparison:
    plan = plan_sweep(engines, workload, variable, values, labels=labels, name=name)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir("sweep")
    clashes = [p.dir_name for p in plan if (out_dir / p.dir_name).exists()]
    if clashes:
        raise ConfigError(f"{out_dir} already holds {clashes[0]}: choose another --out")
    runs, interrupted = execute_keeping_finished(
        plan, model, out_dir, options or RunOptions(), isolate=isolate, title=title, console=console
    )
    return finish(runs, plan, out_dir, interrupted, title=title, console=console)
