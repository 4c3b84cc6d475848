"""CPU: predict what an engine configuration's schedule would cost on a GPU, from one run
measured there.

A run recorded with step timing (`device_ns` in steps.parquet) gives every step's time on
the device. This fits a step cost model to those times,

    time = a + b * max(tokens, m0) + c * context_tokens + d * prompt_pairs

where m0 is the step size below which a step costs what reading every weight costs,
context_tokens is the K/V the step reads, and prompt_pairs is the query-key pairs of its
prompt chunks. It then replays in-repo engine configurations over the run's workload, through
the real policies and step loop, with a runner that computes nothing (no model, no device:
seconds on a CPU), and costs every step they choose: the run's time and output tok/s, and
each request's predicted TTFT and TPOT (percentiles, as METRICS.md defines them).

It predicts schedules, not kernels: the order, size and number of steps a configuration
chooses, priced at the measured machine's rates. A change to what a step costs (other
kernels, another model or GPU) needs a run measured with it.

    PYTHONPATH=. python benchmarks/schedule_model.py RUN_DIR [--engines SPEC ...] [--workload SPEC]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from bench.engine_spec import parse_engine_spec
from engines.core.build import LADDER
from engines.core.engine import LLMEngine
from engines.core.model_runner import Launched
from engines.core.options import EngineOptions, ResolvedOptions, resolve
from engines.request import ConfigError
from workloads.build import build_workload

M0_GRID = np.arange(1, 4097, 4)


@dataclass(frozen=True)
class StepCost:
    """time_ms = a + b * max(tokens, m0) + c * context_tokens + d * prompt_pairs."""

    a: float
    b: float
    c: float
    d: float
    m0: int
    rel_error: float  # root mean square of (predicted - measured) / measured over the fitted steps

    def ms(self, tokens, context_tokens, prompt_pairs):
        return self.a + self.b * np.maximum(tokens, self.m0) + self.c * context_tokens + self.d * prompt_pairs


def step_features(steps) -> tuple:
    """(tokens, context_tokens, prompt_pairs): of every step of a steps.parquet frame, or of
    one step given as a mapping (a StepStats' __dict__). A step's attention_pairs are its
    context plus one per chunk (engines.core.engine._count) plus what prompt chunks score
    beyond that."""
    tokens = steps["prefill_tokens"] + steps["decode_tokens"] + steps["padded_tokens"] + steps["wasted_decode_tokens"]
    pairs = np.maximum(steps["attention_pairs"] - steps["context_tokens"] - steps["num_seqs"], 0)
    return np.asarray(tokens, float), np.asarray(steps["context_tokens"], float), np.asarray(pairs, float)


def fit(steps: pd.DataFrame) -> StepCost:
    """Least squares for (a, b, c, d) at every m0 of the grid; the m0 with the smallest
    squared error wins. Only steps with a device time are used."""
    timed = steps[steps["device_ns"].notna() & (steps["num_seqs"] > 0)]
    if len(timed) < 8:
        raise SystemExit(f"{len(timed)} steps with a device time: record a run with step_timing on a GPU")
    tokens, context, pairs = step_features(timed)
    y = timed["device_ns"].to_numpy(float) / 1e6
    best = None
    for m0 in M0_GRID:
        x = np.column_stack([np.ones_like(y), np.maximum(tokens, m0), context, pairs])
        coef, *_ = np.linalg.lstsq(x, y, rcond=None)
        sse = float(((x @ coef - y) ** 2).sum())
        if best is None or sse < best[0]:
            best = (sse, m0, coef)
    _, m0, (a, b, c, d) = best
    cost = StepCost(float(a), float(b), float(c), float(d), int(m0), 0.0)
    rel = (cost.ms(tokens, context, pairs) - y) / y
    return StepCost(cost.a, cost.b, cost.c, cost.d, cost.m0, float(np.sqrt((rel**2).mean())))


class _Tokens:
    """Sampled tokens that are already on the host: every sequence samples token 5."""

    device_tokens = None

    def __init__(self, n: int):
        self.n = n

    def wait(self) -> list[int]:
        return [5] * self.n

    def device_ns(self, started) -> None:
        return None


class _NoModel:
    """A model runner that computes nothing: the step loop and the policy run for real."""

    def launch(self, plan, previous=None) -> Launched:
        sampled = [c for c in plan.chunks if c.samples]
        return Launched(sampled, _Tokens(len(sampled)))


@dataclass
class Prediction:
    time_s: float
    steps: int
    preemptions: int
    recomputed_tokens: int
    output_tokens: int
    ttft_ms: np.ndarray  # per request: first token's predicted time - arrival (METRICS.md)
    tpot_ms: np.ndarray  # per request with 2+ tokens: (last - first) / (tokens - 1)

    @property
    def output_tok_per_s(self) -> float:
        return self.output_tokens / self.time_s


def replay(engine: str, options: ResolvedOptions, requests, vocab_size: int, cost: StepCost,
           offline: bool = True) -> Prediction:
    """Run the engine's policy over the requests with the step loop and no model, costing
    each step. Offline: every request is there at t = 0; else each joins once the predicted
    clock reaches its arrival_s."""
    if engine not in LADDER:
        raise ConfigError(f"{engine!r} is not an in-repo engine; in-repo engines: {', '.join(LADDER)}")
    policy_cls, make_kv = LADDER[engine]
    eng = LLMEngine(engine, policy_cls(options, make_kv(options)), _NoModel(), vocab_size, {})
    pending = sorted(requests, key=lambda r: 0.0 if offline else r.arrival_s)
    arrival_ms = {r.id: 0.0 if offline else r.arrival_s * 1e3 for r in requests}
    first_ms, last_ms, count = {}, {}, {}
    clock_ms, steps, preempted, recomputed = 0.0, 0, 0, 0
    i = 0
    while i < len(pending) or eng.has_unfinished():
        while i < len(pending) and (offline or pending[i].arrival_s * 1e3 <= clock_ms):
            eng.add_request(pending[i])
            i += 1
        if not eng.has_unfinished():
            clock_ms = pending[i].arrival_s * 1e3  # idle until the next arrival
            continue
        result = eng.step()
        s = result.stats
        step_ms = 0.0
        if s.num_seqs:
            step_ms = float(cost.ms(*step_features(vars(s))))
            steps += 1
            preempted += s.preemptions
            recomputed += s.recomputed_tokens
        # with async scheduling a call returns the tokens of the step before, which ended as
        # this one started; without, its own step's tokens
        at = clock_ms if options.async_scheduling else clock_ms + step_ms
        for event in result.events:
            if event.token_ids:
                first_ms.setdefault(event.request_id, at)
                last_ms[event.request_id] = at
                count[event.request_id] = count.get(event.request_id, 0) + len(event.token_ids)
        clock_ms += step_ms
    ttft = np.array([first_ms[r] - arrival_ms[r] for r in first_ms])
    tpot = np.array([(last_ms[r] - first_ms[r]) / (count[r] - 1) for r in first_ms if count[r] > 1])
    return Prediction(clock_ms / 1e3, steps, preempted, recomputed, sum(count.values()), ttft, tpot)


def options_for(run_options: dict, spec_options: dict, kv_bytes_per_token: int) -> ResolvedOptions:
    """The measured run's resolved options with a spec's own options on top, resolved (and
    checked) as an engine would resolve them."""
    known = {f.name for f in fields(EngineOptions)}
    base = {k: v for k, v in run_options.items() if k in known and k != "kv_memory"}
    opts = EngineOptions.from_kwargs("replay", {**base, **spec_options})
    return resolve(opts, model_max_len=opts.max_model_len, kv_bytes_per_token=kv_bytes_per_token,
                   device=torch.device("cpu"))


def _pair(row: dict, name: str, digits: int) -> str:
    p50, p99 = row[f"{name}_ms_50"], row[f"{name}_ms_99"]
    return "-" if p50 is None else f"{p50:,.{digits}f} / {p99:,.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", help="a result directory of an in-repo engine run with step timing")
    parser.add_argument("--engines", nargs="+", default=None,
                        help="engine specs to replay (default: the run's own engine)")
    parser.add_argument("--workload", default=None, help="workload spec (default: the run's own)")
    parser.add_argument("--json", default=None, help="also write the rows to this file")
    args = parser.parse_args(argv)

    run = Path(args.run)
    missing = [n for n in ("manifest.json", "summary.json", "steps.parquet") if not (run / n).is_file()]
    if missing:
        raise SystemExit(f"{run}: not a complete result directory, missing {', '.join(missing)}")
    manifest = json.loads((run / "manifest.json").read_text())
    summary = json.loads((run / "summary.json").read_text())
    engine, model = manifest["engine"], manifest["model"]
    if engine.get("kind") != "in-repo":
        raise SystemExit(f"{run}/manifest.json: engine {engine.get('name')!r} is a {engine.get('kind')} engine; "
                         "the schedule model needs a run of an in-repo engine (its steps and options)")
    steps = pd.read_parquet(run / "steps.parquet")
    cost = fit(steps)
    run_options = engine["options"]
    vocab = model["config"]["vocab_size"]
    spec = args.workload or manifest["workload"]["spec"]
    workload = build_workload(spec, vocab_size=vocab, max_model_len=run_options["max_model_len"])
    offline = workload.mode == "offline"
    if not offline and workload.mode != "open":
        raise SystemExit(f"workload mode {workload.mode!r}: only offline and open-loop workloads can be replayed")

    print(f"step cost fitted to {run}: {cost.a:.3f} ms + {cost.b * 1e3:.2f} us x max(tokens, {cost.m0}) "
          f"+ {cost.c * 1e6:.2f} ns x context token + {cost.d * 1e6:.3f} ns x prompt pair "
          f"(rms error {cost.rel_error:.1%} a step)")
    measured_device_s = steps["device_ns"].sum() / 1e9
    print(f"measured: {summary['output_tok_per_s']:,.0f} output tok/s, {summary['duration_s']:.2f} s "
          f"({measured_device_s:.2f} s on the device), {summary['engine']['steps']} steps")
    rows = []
    for text in args.engines or [engine["name"]]:
        spec_ = parse_engine_spec(text)
        options = options_for(run_options, spec_.options, run_options["kv_bytes_per_token"])
        p = replay(spec_.name, options, workload.requests, vocab, cost, offline)
        rows.append(dict(engine=text, predicted_s=p.time_s, output_tok_per_s=p.output_tok_per_s, steps=p.steps,
                         preemptions=p.preemptions, recomputed_tokens=p.recomputed_tokens,
                         **{f"{name}_ms_{q}": float(np.percentile(values, q)) if len(values) else None
                            for name, values in (("ttft", p.ttft_ms), ("tpot", p.tpot_ms)) for q in (50, 99)}))
    width = max(len(r["engine"]) for r in rows)
    print(f"{'engine':<{width}}  {'predicted s':>11}  {'out tok/s':>10}  {'steps':>6}  {'preempt':>7}  "
          f"{'recomputed':>10}  {'TTFT p50/p99 ms':>17}  {'TPOT p50/p99 ms':>15}")
    for r in rows:
        print(f"{r['engine']:<{width}}  {r['predicted_s']:>11.2f}  {r['output_tok_per_s']:>10,.0f}  {r['steps']:>6}  "
              f"{r['preemptions']:>7}  {r['recomputed_tokens']:>10}  {_pair(r, 'ttft', 0):>17}  {_pair(r, 'tpot', 1):>15}")
    if args.json:
        Path(args.json).write_text(json.dumps({"cost": cost.__dict__, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
