"""Where an in-repo engine's run time goes, phase by phase, against the bound of its own steps.

    PYTHONPATH=. python benchmarks/step_phases.py RUN_DIR [RUN_DIR ...] [--json OUT.json]

Steps are grouped into the steps that compute prompt tokens (with whatever decodes ride along)
and decode-only steps by how many requests they decode (a draining batch ends in small
steps). For each group: its steps, the positions they computed, the wall time they took, the
sum of their bounds (bench.roofline.steps_bound, with the run's own ceilings) and the ratio.
A step's wall time is the interval between the moments its tokens and the previous step's
reached the host. With async scheduling (the default) step k's tokens arrive at the end of
the engine's step() call k + 1, which launches step k + 1 before it waits for step k; without
it, or on a CPU, where launching a step runs it, at the end of call k. In a loop that keeps
the device busy, that interval is one device step, and the intervals add up to the run.

A step of more kernels than the launch queue holds (a padded engine's prefill, several
forwards of 16,384 positions) blocks the host while it runs, and part of its time then falls
on a neighbouring step: on the H200 `naive` and `static` showed their prompt steps above 100%
of their bound. Group totals of such runs are shifted by a step at each phase change; the
whole run's are not.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from bench.results import load_run
from bench.roofline import Ceilings, ModelShape, dtype_bytes, steps_bound

POSITIONS = ["prefill_tokens", "decode_tokens", "padded_tokens", "wasted_decode_tokens"]
GROUPS = [
    ("prompt steps", lambda s: s.prefill_tokens > 0),
    ("decode, 200+ requests", lambda s: (s.prefill_tokens == 0) & (s.decode_tokens >= 200)),
    ("decode, 100-199", lambda s: (s.prefill_tokens == 0) & s.decode_tokens.between(100, 199)),
    ("decode, 50-99", lambda s: (s.prefill_tokens == 0) & s.decode_tokens.between(50, 99)),
    ("decode, 1-49", lambda s: (s.prefill_tokens == 0) & s.decode_tokens.between(1, 49)),
]


def phases(path: str) -> list[dict]:
    run = load_run(path)
    model, roof = run.manifest["model"], run.summary.get("roofline") or {}
    if not roof.get("ceilings"):
        raise SystemExit(f"{path}: no roofline in summary.json (an offline run of a known model has one)")
    shape = ModelShape.from_config(model["config"])
    ceilings = Ceilings(roof["ceilings"]["bw_bytes_per_s"], roof["ceilings"]["flops_per_s"], "run")
    steps = run.steps.copy()
    ends = steps["end_ns"].to_numpy(np.int64)
    on_gpu = str(model.get("device", "")).startswith("cuda")  # on a CPU a launch runs the step
    if on_gpu and run.manifest["engine"]["options"].get("async_scheduling", False):
        arrived = np.append(ends[1:], ends[-1])  # the last call only collects: it computes nothing
    else:
        arrived = ends
    steps["wall_s"] = np.diff(arrived, prepend=steps["start_ns"].iloc[0]) / 1e9
    rows = []
    for name, select in GROUPS:
        group = steps[select(steps)]
        bound = steps_bound(shape, dtype_bytes(model["dtype"]), group, ceilings) if len(group) else None
        wall = float(group["wall_s"].sum())
        rows.append({
            "run": run.label, "group": name, "steps": len(group),
            "positions": int(group[POSITIONS].to_numpy().sum()),
            "wall_s": wall, "bound_s": None if bound is None else bound["t_min_s"],
            "compute_bound_steps": None if bound is None else bound["compute_bound_steps"],
        })
    rows.append({"run": run.label, "group": "whole run (W)", "steps": int((steps[POSITIONS].sum(axis=1) > 0).sum()),
        "positions": None, "wall_s": run.summary["duration_s"],
        "bound_s": (roof.get("steps_bound") or {}).get("t_min_s"), "compute_bound_steps": None,
        "t_min_s": roof.get("t_min_s")})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--json", help="write the rows here too")
    args = parser.parse_args(argv)
    rows = [row for path in args.runs for row in phases(path)]
    print(f"{'run':<28} {'group':<24} {'steps':>6} {'positions':>10} {'wall s':>8} {'bound s':>8} {'in-step':>8}")
    for r in rows:
        ratio = f"{100 * r['bound_s'] / r['wall_s']:.0f}%" if r["bound_s"] and r["wall_s"] else "-"
        positions = "-" if r["positions"] is None else f"{r['positions']:,}"
        bound = "-" if r["bound_s"] is None else f"{r['bound_s']:.3f}"
        print(f"{r['run'][:28]:<28} {r['group']:<24} {r['steps']:>6} {positions:>10} {r['wall_s']:>8.3f} {bound:>8} {ratio:>8}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
