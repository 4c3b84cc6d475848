"""Fill summary.json["consistency"] of the runs of a comparison (bench.consistency does the
comparing): within each group of runs of one greedy workload, every run against a reference.

The reference is the first run of an in-repo engine in the group, else the first run: the
in-repo engines share one forward, so they are the natural yardstick for the peers. With
repeats, the reference's own later repeats are compared with its first (a determinism check).
"""

from __future__ import annotations

from bench.consistency import compare_outputs
from bench.results import RunResult, write_json
from engines.registry import ENGINES


def _is_in_repo(run: RunResult) -> bool:
    entry = ENGINES.get(run.manifest.get("engine", {}).get("name", ""))
    return entry is not None and entry.kind == "in-repo"


def _comparable(run: RunResult) -> bool:
    return bool(run.manifest.get("workload", {}).get("greedy")) and run.requests["output_token_ids"].notna().any()


def pick_reference(runs: list[RunResult]) -> RunResult:
    return next((r for r in runs if _is_in_repo(r)), runs[0])


def fill_consistency(runs: list[RunResult], groups: dict[str, str]) -> None:
    """groups: run directory name -> group key. Updates each compared run's summary, in
    memory and on disk (atomically). Groups of one run, and sampled workloads, are left alone."""
    by_group: dict[str, list[RunResult]] = {}
    for run in runs:
        by_group.setdefault(groups[run.path.name], []).append(run)
    for members in by_group.values():
        members = [r for r in members if _comparable(r)]
        if len(members) < 2:
            continue
        # the same requests only: a run whose workload hash differs from the reference's (an
        # engine with another vocabulary gets other token ids) is not compared
        reference = pick_reference(members)
        members = [r for r in members if r.manifest["workload"]["content_hash"] == reference.manifest["workload"]["content_hash"]]
        if len(members) < 2:
            continue
        blocks = compare_outputs({r.path.name: r.requests for r in members}, reference.path.name)
        for run in members:
            if run is reference:
                block = {"reference": reference.label, "is_reference": True}
            else:
                block = {**blocks[run.path.name], "reference": reference.label, "reference_run": reference.path.name}
            run.summary["consistency"] = block
            write_json(run.path / "summary.json", run.summary)
