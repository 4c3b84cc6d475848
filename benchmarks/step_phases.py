"""Print where in-repo engines' runs spent their time, phase by phase, against the bound of
their own steps (bench.metrics.phases; a run's summary.json holds the same rows under
roofline.steps_bound.phases, and the report draws them). This reads result directories, older
ones too, and prints one table.

    python benchmarks/step_phases.py RUN_DIR [RUN_DIR ...] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.metrics.phases import phase_breakdown, step_times_s
from bench.results import load_run
from bench.roofline import Ceilings, ModelShape, dtype_bytes, step_bounds


def phases(path: str) -> list[dict]:
    run = load_run(path)
    model, roof = run.manifest["model"], run.summary.get("roofline") or {}
    if not roof.get("ceilings"):
        raise SystemExit(f"{path}: no roofline in summary.json (an offline run of a known model has one)")
    ceilings = Ceilings(roof["ceilings"]["bw_bytes_per_s"], roof["ceilings"]["flops_per_s"], "run")
    times, source = step_times_s(
        run.steps, on_gpu=str(model.get("device", "")).startswith("cuda"),
        async_scheduling=bool(run.manifest["engine"]["options"].get("async_scheduling")),
    )
    bounds = step_bounds(ModelShape.from_config(model["config"]), dtype_bytes(model["dtype"]), run.steps, ceilings)
    if bounds is None:
        raise SystemExit(f"{path}: its steps do not count their attention (a peer, or a run from before the counters)")
    rows = phase_breakdown(run.steps, times, bounds.seconds)
    own = roof.get("steps_bound") or {}
    whole = {"phase": "whole run (W)", "steps": own.get("steps"), "positions": None,
             "time_s": run.summary["duration_s"], "bound_s": own.get("t_min_s")}
    return [{"run": run.label, "time_source": source, **row} for row in rows + [whole]]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    rows = [row for path in args.runs for row in phases(path)]
    print(f"{'run':<28} {'phase':<24} {'steps':>6} {'positions':>10} {'time s':>8} {'bound s':>8} {'in-step':>8}")
    for r in rows:
        ratio = f"{100 * r['bound_s'] / r['time_s']:.0f}%" if r["bound_s"] and r["time_s"] else "-"
        positions = "-" if r["positions"] is None else f"{r['positions']:,}"
        bound = "-" if r["bound_s"] is None else f"{r['bound_s']:.3f}"
        print(f"{r['run'][:28]:<28} {r['phase']:<24} {r['steps'] or '-':>6} {positions:>10} "
              f"{r['time_s']:>8.3f} {bound:>8} {ratio:>8}")
    sources = sorted({r["time_source"] for r in rows})
    print(f"step times from: {', '.join(sources)} (device: CUDA events; host: intervals between "
          "tokens reaching the host)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
