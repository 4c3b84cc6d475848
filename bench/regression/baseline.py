"""What a verdict needs from a set of runs, and the versioned JSON file that keeps it.

Runs are grouped by (label, workload name, workload content hash); the runs of a group are
repeats. A group keeps
its identity (bench.regression.comparable), one entry per run (rates and counters from
summary.json, the run's own latency percentiles, commit) and the per-request values of every
repeat pooled and reduced (bench.regression.samples). Both sides of a comparison become a
`Baseline`, whether they come from result directories or from a saved file, so both go
through the same code.

File layout (format_version 1):
    {"format": "llm-batching-bench baseline", "format_version": 1, "max_samples": 1000,
     "groups": [{"label", "workload", "slo", "experiment": {...}, "environment": {...},
                 "runs": [{"source", "git_commit", "git_dirty", "rates": {...},
                           "counters": {...}, "percentiles": {"ttft_ms.p50": ..., ...}}],
                 "samples": {"ttft_ms": {"n": 600, "values": [...]}, ...}}]}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.metrics import RecordError
from bench.regression.comparable import Identity, differences, identity_of
from bench.regression.rules import (
    COUNTER_NAMES,
    DISTRIBUTION_NAMES,
    METRICS_BY_NAME,
    RATE_NAMES,
    SAMPLE_NAMES,
    metric_value,
)
from bench.regression.samples import MAX_SAMPLES, pooled_samples, request_values
from bench.results import ResultError, RunResult, find_runs, load_run, write_json

FORMAT = "llm-batching-bench baseline"
FORMAT_VERSION = 1


class BaselineError(ResultError):
    """Input a verdict cannot use: a corrupt, partial or wrong-version baseline file, or runs
    that cannot be grouped. A ResultError, so the CLI reports it as bad input (exit 2)."""


@dataclass
class RunFacts:
    """The per-run numbers of one repeat."""

    source: str
    git_commit: str | None
    git_dirty: bool | None
    rates: dict[str, float | None]
    counters: dict[str, float | None]
    percentiles: dict[str, float | None]  # this run's p50 / p99 of every distribution metric


@dataclass
class Group:
    label: str
    workload: str
    identity: Identity
    slo: dict | None
    runs: list[RunFacts]
    samples: dict[str, np.ndarray]
    sample_sizes: dict[str, int]  # values before reduction
    tag: str = ""  # "#<hash>" when two workloads of one name ran with this label

    @property
    def content_hash(self) -> str | None:
        return self.identity.experiment.get("workload.content_hash")

    @property
    def key(self) -> tuple[str, str, str | None]:
        return (self.label, self.workload, self.content_hash)

    @property
    def name(self) -> str:
        return f"{self.label} · {self.workload}{self.tag}"


@dataclass
class Baseline:
    groups: list[Group]
    source: str  # where it came from, for messages

    def __post_init__(self) -> None:
        # two specs of one generator share a workload name ("synthetic"): tell them apart
        names = [(g.label, g.workload) for g in self.groups]
        for g in self.groups:
            if names.count((g.label, g.workload)) > 1:
                g.tag = f"#{(g.content_hash or '?')[:8]}"

    @classmethod
    def from_runs(cls, runs: list[RunResult], source: str = "current runs") -> Baseline:
        if not runs:
            raise BaselineError(f"{source}: no runs to compare")
        by_key: dict[tuple, list[RunResult]] = {}
        for run in runs:
            status = (run.manifest.get("run") or {}).get("status")
            if status != "complete":
                raise BaselineError(
                    f"{run.path}: run status {status!r}; a verdict needs complete runs "
                    f"(an interrupted or failed run measures something else)"
                )
            workload = run.manifest.get("workload") or {}
            key = (run.label, workload.get("name") or "?", workload.get("content_hash"))
            by_key.setdefault(key, []).append(run)
        return cls([_group(key, group) for key, group in by_key.items()], source)


def _group(key: tuple, runs: list[RunResult]) -> Group:
    identity = identity_of(runs[0].manifest)
    for run in runs[1:]:
        other = identity_of(run.manifest)
        diff = differences(identity.experiment, other.experiment)
        diff += differences(identity.environment, other.environment)
        if diff:
            raise BaselineError(
                f"{run.path}: grouped as a repeat of {runs[0].path} (same label and workload) "
                f"but differs: {'; '.join(diff)}"
            )
    values = []
    for run in runs:
        try:
            values.append(request_values(run.requests))
        except RecordError as e:
            raise BaselineError(f"{run.path / 'requests.parquet'}: {e}") from e
    samples, sizes, percentiles = pooled_samples(values)
    facts = []
    for run, run_percentiles in zip(runs, percentiles):
        harness = run.manifest.get("harness") or {}
        facts.append(
            RunFacts(
                source=run.path.name,
                git_commit=harness.get("git_commit"),
                git_dirty=harness.get("git_dirty"),
                rates={n: metric_value(METRICS_BY_NAME[n], run.summary) for n in RATE_NAMES},
                counters={n: metric_value(METRICS_BY_NAME[n], run.summary) for n in COUNTER_NAMES},
                percentiles=run_percentiles,
            )
        )
    return Group(key[0], key[1], identity, runs[0].summary.get("slo"), facts, samples, sizes)


def load_runs(paths: list[str | Path]) -> list[RunResult]:
    """Result directories named, or found one level below the named folders."""
    return [load_run(p) for p in find_runs(list(paths))]


def load_reference(paths: list[str | Path] | str | Path) -> Baseline:
    """A baseline from one saved baseline file, or from result directories (or folders of
    them, as `bench compare` writes)."""
    paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
    if len(paths) == 1 and Path(paths[0]).is_file():
        return load_baseline(paths[0])
    return Baseline.from_runs(load_runs(paths), source=", ".join(map(str, paths)))


def _to_json(baseline: Baseline) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "max_samples": MAX_SAMPLES,
        "groups": [
            {
                "label": g.label,
                "workload": g.workload,
                "slo": g.slo,
                "experiment": g.identity.experiment,
                "environment": g.identity.environment,
                "runs": [vars(r) for r in g.runs],
                "samples": {
                    name: {"n": g.sample_sizes[name], "values": g.samples[name].tolist()}
                    for name in SAMPLE_NAMES
                },
            }
            for g in baseline.groups
        ],
    }


def save_baseline(runs: list[RunResult] | Baseline, path: str | Path) -> Path:
    """Write a baseline file (atomically) from runs; repeats are grouped by label and workload."""
    baseline = runs if isinstance(runs, Baseline) else Baseline.from_runs(runs, "runs")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, _to_json(baseline))
    return path


class _Reader:
    """Walks a parsed baseline file, naming the file and the field in every error."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, where: str, expected: str, value) -> BaselineError:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        return BaselineError(f"{self.path}: {where}: expected {expected}, found {shown}")

    def get(self, obj: dict, key: str, where: str, types: tuple, expected: str):
        field = f"{where}.{key}" if where else key
        if key not in obj:
            raise BaselineError(f"{self.path}: {field}: missing (a partial file?)")
        value = obj[key]
        if not isinstance(value, types) or isinstance(value, bool) and bool not in types:
            raise self.fail(field, expected, value)
        return value

    def numbers(self, obj: dict, where: str, names: tuple[str, ...]) -> dict:
        out = {}
        for name in names:
            value = self.get(obj, name, where, (int, float, type(None)), "a number or null")
            out[name] = value
        return out

    def group(self, g, where: str) -> Group:
        if not isinstance(g, dict):
            raise self.fail(where, "an object", g)
        text = (str,)
        runs = self.get(g, "runs", where, (list,), "a list of runs")
        if not runs:
            raise self.fail(f"{where}.runs", "at least one run", runs)
        facts = []
        for i, r in enumerate(runs):
            w = f"{where}.runs[{i}]"
            if not isinstance(r, dict):
                raise self.fail(w, "an object", r)
            facts.append(
                RunFacts(
                    source=self.get(r, "source", w, text, "a string"),
                    git_commit=self.get(r, "git_commit", w, (str, type(None)), "a string or null"),
                    git_dirty=self.get(r, "git_dirty", w, (bool, type(None)), "true, false or null"),
                    rates=self.numbers(self.get(r, "rates", w, (dict,), "an object"), f"{w}.rates", RATE_NAMES),
                    counters=self.numbers(
                        self.get(r, "counters", w, (dict,), "an object"), f"{w}.counters", COUNTER_NAMES
                    ),
                    percentiles=self.numbers(
                        self.get(r, "percentiles", w, (dict,), "an object"), f"{w}.percentiles", DISTRIBUTION_NAMES
                    ),
                )
            )
        samples, sizes = {}, {}
        all_samples = self.get(g, "samples", where, (dict,), "an object")
        for name in SAMPLE_NAMES:
            w = f"{where}.samples"
            entry = self.get(all_samples, name, w, (dict,), "an object")
            sizes[name] = self.get(entry, "n", f"{w}.{name}", (int,), "an integer")
            values = self.get(entry, "values", f"{w}.{name}", (list,), "a list of numbers")
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise self.fail(f"{w}.{name}.values", "a list of numbers", values)
            samples[name] = np.asarray(values, dtype=np.float64)
        return Group(
            label=self.get(g, "label", where, text, "a string"),
            workload=self.get(g, "workload", where, text, "a string"),
            identity=Identity(
                self.get(g, "experiment", where, (dict,), "an object"),
                self.get(g, "environment", where, (dict,), "an object"),
            ),
            slo=self.get(g, "slo", where, (dict, type(None)), "an object or null"),
            runs=facts,
            samples=samples,
            sample_sizes=sizes,
        )


def load_baseline(path: str | Path) -> Baseline:
    """Read a baseline file; a corrupt, partial or other-version file raises BaselineError
    naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise BaselineError(f"{path}: no such baseline file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BaselineError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    except UnicodeDecodeError as e:
        raise BaselineError(f"{path}: not a text file ({e.reason} at byte {e.start})")
    reader = _Reader(path)
    if not isinstance(data, dict):
        raise reader.fail("top level", "a JSON object", type(data).__name__)
    if data.get("format") != FORMAT:
        raise reader.fail("format", f"{FORMAT!r} (is this a baseline file?)", data.get("format"))
    if data.get("format_version") != FORMAT_VERSION:
        raise BaselineError(
            f"{path}: baseline format version {data.get('format_version')!r}, this harness reads "
            f"version {FORMAT_VERSION}; save the baseline again with this version"
        )
    groups = reader.get(data, "groups", "", (list,), "a list of groups")
    if not groups:
        raise reader.fail("groups", "at least one group", groups)
    baseline = Baseline([reader.group(g, f"groups[{i}]") for i, g in enumerate(groups)], str(path))
    keys = [g.key for g in baseline.groups]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise reader.fail(f"groups[{i}]", "one group per (label, workload, content hash)", list(key))
    return baseline
