"""The runs of one report as the page shows them: a unique name, a colour, and checked access
to their summary fields.

Names are the run's label, plus the workload when the report holds several workloads, plus
the sweep point for sweep runs; repeats of the same name get #2, #3. A run keeps its colour
in every figure so that a reader can follow one engine from figure to figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.results import ResultError, RunResult

# plotly's default qualitative palette, then D3's: enough for 20 runs before colours repeat
PALETTE = (
    "#636efa", "#ef553b", "#00cc96", "#ab63fa", "#ffa15a", "#19d3f3", "#ff6692", "#b6e880",
    "#ff97ff", "#fecb52", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
    "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
SWEEP_VARIABLES = ("rate", "concurrency")


@dataclass(frozen=True)
class Sweep:
    name: str
    variable: str  # "rate" (requests/s) or "concurrency"
    value: float


@dataclass
class RunView:
    run: RunResult
    name: str
    color: str
    label: str
    workload: str
    sweep: Sweep | None

    @property
    def summary(self) -> dict:
        return self.run.summary

    @property
    def manifest(self) -> dict:
        return self.run.manifest

    def number(self, *keys: str) -> float | None:
        """A numeric summary field, None where it (or a block above it) is null or absent.
        A field holding something else than a number is a broken file: say which."""
        value = self.summary
        for key in keys:
            if value is None:
                return None
            if not isinstance(value, dict):
                raise ResultError(
                    f"{self.run.path / 'summary.json'}: {'.'.join(keys[:keys.index(key)])} is "
                    f"{type(value).__name__}, expected an object"
                )
            value = value.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ResultError(
                f"{self.run.path / 'summary.json'}: {'.'.join(keys)} is {value!r}, expected a number or null"
            )
        return None if isinstance(value, float) and math.isnan(value) else value

    def block(self, key: str) -> dict | None:
        """A summary block (engine, device, roofline, ...), None where null or absent."""
        value = self.summary.get(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ResultError(
                f"{self.run.path / 'summary.json'}: {key} is {type(value).__name__}, expected an object or null"
            )
        return value

    def count(self, status: str) -> int:
        return int(self.number("counts", status) or 0)

    @property
    def not_ok(self) -> int:
        return sum(self.count(s) for s in ("error", "timeout", "cancelled", "rejected"))


def _label(run: RunResult) -> str:
    engine = run.manifest.get("engine") or {}
    return str(run.manifest.get("label") or engine.get("name") or run.path.name)


def _workload(run: RunResult) -> str:
    workload = run.manifest.get("workload") or {}
    return str(workload.get("name") or "?")


def _sweep(run: RunResult) -> Sweep | None:
    sweep = run.manifest.get("sweep")
    if sweep is None:
        return None
    where = f"{run.path / 'manifest.json'}: sweep"
    if not isinstance(sweep, dict):
        raise ResultError(f"{where} is {sweep!r}, expected an object {{name, variable, value}}")
    variable, value = sweep.get("variable"), sweep.get("value")
    if variable not in SWEEP_VARIABLES:
        raise ResultError(f"{where}.variable is {variable!r}, expected one of {', '.join(SWEEP_VARIABLES)}")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"{where}.value is {value!r}, expected a number")
    return Sweep(name=str(sweep.get("name") or "sweep"), variable=variable, value=float(value))


def _check(run) -> None:
    if not isinstance(run, RunResult):
        raise TypeError(f"expected a bench.results.RunResult, got {type(run).__name__}")
    for name in ("manifest", "summary"):
        if not isinstance(getattr(run, name), dict):
            raise ResultError(f"{run.path}: {name} is {type(getattr(run, name)).__name__}, expected a dict")


def view_runs(runs: list[RunResult]) -> list[RunView]:
    for run in runs:
        _check(run)
    several_workloads = len({_workload(r) for r in runs}) > 1
    names: list[str] = []
    seen: dict[str, int] = {}
    for run in runs:
        name = _label(run)
        if several_workloads:
            name += f" · {_workload(run)}"
        sweep = _sweep(run)
        if sweep:
            name += f" · {sweep.variable}={sweep.value:g}"
        seen[name] = seen.get(name, 0) + 1
        names.append(name if seen[name] == 1 else f"{name} #{seen[name]}")
    return [
        RunView(
            run=run,
            name=name,
            color=PALETTE[i % len(PALETTE)],
            label=_label(run),
            workload=_workload(run),
            sweep=_sweep(run),
        )
        for i, (run, name) in enumerate(zip(runs, names))
    ]
