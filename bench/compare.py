"""`bench compare`: every engine x workload, each run written as soon as it ends, then the
output-consistency check, the terminal table and one HTML report over all of them.

A comparison is a plan (a list of PlannedRun) and its execution; `bench sweep` builds a
different plan (one run per load point) and executes it the same way. Runs are interleaved
(for each repeat, for each workload, every engine in turn) so that slow drift of the machine
does not fall on one engine. Ctrl-C keeps every finished run and the interrupted one's
partial records, and the report is still written from what exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from bench.consistency_fill import fill_consistency
from bench.engine_spec import parse_engine_spec
from bench.isolate import run_isolated
from bench.naming import default_out_dir, safe_name, workload_dir_name
from bench.results import RunResult
from bench.session import RunOptions, run_one
from bench.table import print_table, say
from engines.registry import ENGINES
from engines.request import ConfigError
from workloads import parse_spec

DEFAULT_ENGINES = ["naive", "static", "continuous", "paged"]
EXIT_OK, EXIT_RUN_FAILED, EXIT_INTERRUPTED = 0, 1, 130


@dataclass(frozen=True)
class PlannedRun:
    engine_spec: str
    label: str
    workload_spec: str | dict  # as the user wrote it, or a resolved spec's dict (sweep points)
    dir_name: str
    group: str  # runs of one workload (and load point): their outputs are compared
    manifest_extra: dict = field(default_factory=dict)
    workload_title: str = ""  # for progress lines


@dataclass
class Comparison:
    out_dir: Path
    runs: list[RunResult]
    report_path: Path | None
    interrupted: bool
    verdict: object | None = None  # bench.regression Verdict with a baseline, or an A/B one with versus

    @property
    def exit_code(self) -> int:
        if self.interrupted:
            return EXIT_INTERRUPTED
        if any(r.manifest["run"]["status"] != "complete" for r in self.runs):
            return EXIT_RUN_FAILED  # before "not comparable" (3): a failure is the news
        if self.verdict is not None and self.verdict.exit_code != 0:
            return self.verdict.exit_code
        return EXIT_OK


def check_engines(engines: list[str], labels: list[str] | None = None) -> list[str]:
    """The labels of these engine specs, after checking names and that labels are distinct."""
    if not engines:
        raise ConfigError("no engines given")
    for spec in engines:
        name = parse_engine_spec(spec).name
        if name not in ENGINES:
            raise ConfigError(f"unknown engine {name!r} in {spec!r}; known engines: {', '.join(ENGINES)}")
    if labels is not None and len(labels) != len(engines):
        raise ConfigError(f"{len(labels)} labels for {len(engines)} engines: give one label per engine")
    labels = labels or [parse_engine_spec(s).text for s in engines]
    seen = set()
    for label in labels:
        if label in seen:
            raise ConfigError(f"two runs would both be labelled {label!r}: give distinct --label values")
        seen.add(label)
    return labels


def plan_compare(
    engines: list[str], workloads: list[str], *, labels: list[str] | None = None, repeat: int = 1
) -> list[PlannedRun]:
    labels = check_engines(engines, labels)
    if not workloads:
        raise ConfigError("no workloads given")
    for workload in workloads:
        parse_spec(workload)  # a typo in a spec fails now, not after the first engines ran
    if repeat < 1:
        raise ConfigError(f"repeat must be >= 1, got {repeat}")
    plan = []
    for k in range(repeat):
        for workload in workloads:
            wname = workload_dir_name(workload)
            for spec, label in zip(engines, labels):
                suffix = f"__r{k + 1}" if repeat > 1 else ""
                extra = {"repeat": {"index": k + 1, "count": repeat}} if repeat > 1 else {}
                dir_name = f"{safe_name(label)}__{wname}{suffix}"
                plan.append(PlannedRun(spec, label, workload, dir_name, wname, extra, workload))
    names = [p.dir_name for p in plan]
    if len(set(names)) != len(names):
        raise ConfigError("two runs map to one result directory name: give distinct --label values")
    return plan


def execute(
    plan: list[PlannedRun],
    model: str,
    out_dir: Path,
    options: RunOptions,
    *,
    isolate: bool = False,
    console: Console | None = None,
    runs: list[RunResult] | None = None,
) -> tuple[list[RunResult], bool]:
    """Run the plan in order; returns (finished runs, interrupted). Finished runs are
    appended to `runs` when given, so a caller still holds them if a later run raises."""
    console = console or Console()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    runs = [] if runs is None else runs
    for i, item in enumerate(plan, 1):
        say(console, f"[{i}/{len(plan)}] {item.label} on {item.workload_title}")
        target = out_dir / item.dir_name
        try:
            if isolate:
                result, stop = run_isolated(
                    item.engine_spec, model, item.workload_spec, target, options,
                    label=item.label, manifest_extra=item.manifest_extra,
                )
            else:
                result = run_one(
                    item.engine_spec, model, item.workload_spec, target,
                    label=item.label, manifest_extra=item.manifest_extra, **options.as_kwargs(),
                )
                stop = result.manifest["run"]["status"] == "interrupted"
        except KeyboardInterrupt:
            say(console, "interrupted before this run recorded anything")
            return runs, True
        runs.append(result)
        status = result.manifest["run"]["status"]
        if status == "failed":
            say(console, f"run failed: {result.manifest['run']['error']}")
        if stop:
            say(console, f"interrupted: kept {len(runs)} run(s), the last one partial")
            return runs, True
    return runs, False


def execute_keeping_finished(
    plan: list[PlannedRun],
    model: str,
    out_dir: Path,
    options: RunOptions,
    *,
    isolate: bool = False,
    title: str | None = None,
    console: Console | None = None,
) -> tuple[list[RunResult], bool]:
    """execute(); if a run cannot even start (e.g. an option one engine refuses), the runs
    that finished before still get their table and report, then the error goes on up."""
    console = console or Console()
    runs: list[RunResult] = []
    try:
        return execute(plan, model, out_dir, options, isolate=isolate, console=console, runs=runs)
    except Exception:
        if runs:
            say(console, f"a run failed to start; the report covers the {len(runs)} run(s) before it")
            finish(runs, plan, out_dir, False, title=title, console=console)
        raise


def finish(
    runs: list[RunResult],
    plan: list[PlannedRun],
    out_dir: Path,
    interrupted: bool,
    *,
    title: str | None = None,
    console: Console | None = None,
    baseline: Path | list[Path] | None = None,
    save_baseline: Path | None = None,
    thresholds: dict | None = None,
    insist: bool = False,
    versus: str | None = None,
    alpha: float | None = None,
) -> Comparison:
    """Consistency, table, regression or A/B verdict and report over what ran. alpha: the
    verdicts' significance level (default bench.regression's, 0.01)."""
    console = console or Console()
    out_dir = Path(out_dir)
    groups = {item.dir_name: item.group for item in plan}
    fill_consistency(runs, {r.path.name: groups.get(r.path.name, r.path.name) for r in runs})
    verdict = None
    if runs:
        print_table(runs, console, title=title)
        if versus is not None or baseline is not None or save_baseline is not None:
            verdict = _verdict(runs, interrupted, console, versus=versus, baseline=baseline,
                               save_baseline=save_baseline, thresholds=thresholds, insist=insist, alpha=alpha)
    report_path = None
    if runs:
        import reports  # plotly: only once there is something to report

        report_path = reports.write_report(
            runs, out_dir / "report.html", title=title,
            verdict=verdict.to_report_dict() if verdict is not None else None,
        )
        say(console, f"report: {report_path}")
    else:
        say(console, "no run finished: no report")
    return Comparison(out_dir, runs, report_path, interrupted, verdict)


def _verdict(runs: list[RunResult], interrupted: bool, console, *, versus, baseline, save_baseline, thresholds,
             insist, alpha):
    """The A/B or regression verdict, printed, and the baseline saved, over the runs that
    completed (a failed run measured something else; its directory and the report stay).
    None, and why, said, when there is nothing to judge."""
    if interrupted:
        say(console, "interrupted: no verdict or baseline from a partial comparison")
        return None
    complete = [r for r in runs if r.manifest["run"]["status"] == "complete"]
    if len(complete) < len(runs):
        say(console, f"{len(runs) - len(complete)} run(s) did not complete: the verdict leaves them out"
            + (", and no baseline is saved" if save_baseline is not None else ""))
    from bench.regression import compare_engines, evaluate
    from bench.regression import save_baseline as save

    if save_baseline is not None and len(complete) == len(runs):
        save(runs, Path(save_baseline))
        say(console, f"baseline saved: {save_baseline}")
    options = dict(thresholds=thresholds, insist=insist, **({} if alpha is None else {"alpha": alpha}))
    if versus is not None:
        labels = {r.label for r in complete}
        if versus not in labels or len(labels) < 2:
            say(console, f"no complete runs of {versus!r} and of another engine: no A/B verdict")
            return None
        verdict = compare_engines(complete, versus, **options)
    elif baseline is not None:
        if not complete:
            say(console, "no complete run: no regression verdict")
            return None
        verdict = evaluate(complete, baseline, **options)
    else:
        return None
    console.print(verdict.to_markdown(), markup=False, highlight=False)
    return verdict


def compare(
    engines: list[str] | None = None,
    workloads: list[str] | None = None,
    model: str = "tiny",
    out_dir: Path | None = None,
    options: RunOptions | None = None,
    *,
    labels: list[str] | None = None,
    repeat: int = 1,
    isolate: bool = False,
    title: str | None = None,
    console: Console | None = None,
    baseline: Path | list[Path] | None = None,
    save_baseline: Path | None = None,
    thresholds: dict | None = None,
    insist: bool = False,
    versus: str | None = None,
    alpha: float | None = None,
) -> Comparison:
    """Run every engine on every workload into out_dir/<label>__<workload>/ and report.
    versus: the label of the engine every other is judged against (A/B verdict)."""
    engines = engines or list(DEFAULT_ENGINES)
    workloads = workloads or ["quick"]
    plan = plan_compare(engines, workloads, labels=labels, repeat=repeat)
    if alpha is not None:
        from bench.regression.verdict import check_alpha

        check_alpha(alpha)  # now, not after every run
    if versus is not None:
        planned = list(dict.fromkeys(p.label for p in plan))
        if baseline is not None:
            raise ConfigError("--versus and --baseline each make the comparison's verdict: give one")
        if versus not in planned:
            raise ConfigError(f"--versus {versus!r}: no engine of this comparison has that label; labels: {planned}")
        if len(planned) < 2:
            raise ConfigError(f"--versus {versus!r}: it is the only engine here; an A/B needs another")
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir()
    clashes = [p.dir_name for p in plan if (out_dir / p.dir_name).exists()]
    if clashes:
        raise ConfigError(f"{out_dir} already holds {clashes[0]}: choose another --out")
    if baseline is not None:
        from bench.regression import load_reference

        load_reference(baseline)  # an unreadable baseline fails now, not after every run
    runs, interrupted = execute_keeping_finished(
        plan, model, out_dir, options or RunOptions(), isolate=isolate, title=title, console=console
    )
    return finish(
        runs, plan, out_dir, interrupted, title=title, console=console,
        baseline=baseline, save_baseline=save_baseline, thresholds=thresholds, insist=insist, versus=versus,
        alpha=alpha,
    )
