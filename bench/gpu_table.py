"""`bench table`: the published table, engines x model shapes on one workload, in one command.

For each model shape it runs every engine on the workload (each in a fresh process, so that a
peer holding most of the device memory cannot slow the next one), then prints one table of
output tok/s, TTFT and TPOT p50/p99, roofline efficiency (split into what the engine's
schedule allows and how close its steps came to that), device utilisation and output
agreement, with each engine's speed-up over the peers, and writes one HTML report over all
runs. The in-repo engines share one KV memory budget and max_model_len, so that their
difference is the batching strategy alone.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.compare import execute, plan_compare
from bench.consistency_fill import fill_consistency
from bench.engine_spec import parse_engine_spec
from bench.results import ResultError, RunResult, load_run
from bench.session import RunOptions
from engines.registry import ENGINES

DEFAULT_MODELS = ["llama-1b", "llama-8b"]
DEFAULT_ENGINES = ["naive", "static", "continuous", "paged", "hf-generate", "hf-cb", "hf-cb:use_cuda_graph=true"]


def in_repo_spec(spec: str, options: dict) -> str:
    """Add the shared in-repo options to an in-repo engine's spec (its own options win)."""
    parsed = parse_engine_spec(spec)
    if ENGINES[parsed.name].kind != "in-repo" or not options:
        return spec
    merged = {**options, **parsed.options}
    return parsed.name + ":" + ",".join(f"{k}={v}" for k, v in merged.items())


def _pct(x) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _ms(dist: dict | None, key: str) -> str:
    return "–" if not dist or dist.get(key) is None else f"{dist[key]:,.1f}"


def print_table(runs: list[RunResult], console: Console) -> None:
    table = Table(title="output tok/s, latency (ms), efficiency (%)")
    for col in ["model", "engine", "ok", "out tok/s", "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99",
                "roofline %", "schedule %", "in-step %", "GPU util %", "power cap %", "agree %", "vs hf-cb"]:
        table.add_column(col, justify="right" if col not in ("model", "engine") else "left")
    by_model: dict[str, list[RunResult]] = {}
    for run in runs:
        model = (run.manifest.get("model") or {}).get("name") or run.manifest.get("table_model", "?")
        by_model.setdefault(model, []).append(run)
    for model, group in by_model.items():
        engine = lambda r: r.manifest.get("table_engine", r.label)  # noqa: E731
        peer = [r.summary.get("output_tok_per_s") for r in group if engine(r) == "hf-cb"]
        peer_rate = peer[0] if peer and peer[0] else None
        for run in group:
            s = run.summary
            rate = s.get("output_tok_per_s")
            roof = (s.get("roofline") or {}).get("efficiency")
            own = (s.get("roofline") or {}).get("steps_bound") or {}
            util = (s.get("device") or {}).get("utilization_pct_mean")
            capped = (s.get("device") or {}).get("power_capped_pct")
            agree = (s.get("consistency") or {}).get("token_agreement")
            table.add_row(
                model, engine(run), str(s["counts"]["ok"]), "–" if rate is None else f"{rate:,.0f}",
                _ms(s.get("ttft_ms"), "p50"), _ms(s.get("ttft_ms"), "p99"),
                _ms(s.get("tpot_ms"), "p50"), _ms(s.get("tpot_ms"), "p99"),
                _pct(roof), _pct(own.get("schedule_efficiency")), _pct(own.get("efficiency")),
                "–" if util is None else f"{util:.0f}", "–" if capped is None else f"{capped:.0f}",
                "ref" if (s.get("consistency") or {}).get("is_reference") else _pct(agree),
                "–" if not (rate and peer_rate) else f"{rate / peer_rate:.1f}x",
            )
    console.print(table)


def run_table(
    models: list[str],
    engines: list[str],
    workload: str,
    out_dir: Path,
    options: RunOptions,
    *,
    in_repo_options: dict,
    isolate: bool = True,
    resume: bool = False,
    console: Console | None = None,
) -> tuple[list[RunResult], bool]:
    """resume: keep the complete runs already in out_dir and run only the others, so that a
    table longer than one sitting (or one command's time limit) is finished in several."""
    console = console or Console(width=max(Console().width, 150))
    out_dir = Path(out_dir)
    specs = [in_repo_spec(e, in_repo_options) for e in engines]
    labels = [parse_engine_spec(e).text for e in engines]  # labels without the shared options
    all_runs: list[RunResult] = []
    interrupted = False
    for model in models:
        # labels carry the model, so that one report over every shape tells the runs apart
        plan = plan_compare(specs, [workload], labels=[f"{model} {label}" for label in labels])
        plan = [
            replace(p, group=f"{model}/{p.group}",
                    manifest_extra={**p.manifest_extra, "table_model": model, "table_engine": label})
            for p, label in zip(plan, labels)
        ]
        kept = _complete_runs(plan, out_dir) if resume else {}
        if kept:
            console.print(f"{model}: kept {len(kept)} complete run(s) from {out_dir}: {', '.join(sorted(kept))}")
        todo = [p for p in plan if p.dir_name not in kept]
        if resume:
            _set_aside_incomplete(todo, out_dir, console)
        new_runs, interrupted = execute(todo, model, out_dir, options, isolate=isolate, console=console)
        by_dir = {**kept, **{r.path.name: r for r in new_runs}}
        runs = [by_dir[p.dir_name] for p in plan if p.dir_name in by_dir]
        groups = {p.dir_name: p.group for p in plan}
        fill_consistency(runs, {r.path.name: groups[r.path.name] for r in runs})
        all_runs += runs
        if interrupted:
            break
    print_table(all_runs, console)
    from reports import write_report

    path = write_report(all_runs, out_dir / "report.html", title=f"{', '.join(models)} on {workload}")
    console.print(f"report: {path}")
    return all_runs, interrupted


def _complete_runs(plan, out_dir: Path) -> dict[str, RunResult]:
    kept = {}
    for item in plan:
        try:
            run = load_run(out_dir / item.dir_name)
        except ResultError:
            continue  # absent, or not a readable result: it runs again
        if run.manifest["run"]["status"] == "complete":
            kept[item.dir_name] = run
    return kept


def _set_aside_incomplete(todo, out_dir: Path, console: Console) -> None:
    """A failed or interrupted run's directory is renamed, not deleted: what it measured stays."""
    for item in todo:
        path = out_dir / item.dir_name
        if path.exists():
            n = 1
            while path.with_name(f"{path.name}.incomplete-{n}").exists():
                n += 1
            path.rename(path.with_name(f"{path.name}.incomplete-{n}"))
            console.print(f"{item.dir_name}: incomplete, moved to {path.name}.incomplete-{n} and run again")
