"""Development check on a GPU: raw engine throughput on anchor-a, and where a step's time goes.

    python benchmarks/gpu_smoke.py --models llama-1b,llama-8b --engines paged,continuous --profile
    python benchmarks/gpu_smoke.py --engines paged,paged:mixed_graph_tokens=2048

An engine spec's own options (as in `bench compare`) override the flags below for that engine.

Not the published table (that is `bench table`, with the harness's metrics): this drives the
engine directly, to see the step-time split while developing.
"""

from __future__ import annotations

import argparse
import gc
import time
import traceback

import torch

from bench.commands.options import split_specs
from bench.engine_spec import parse_engine_spec
from engines.registry import create_engine
from workloads import build_workload


def run(spec: str, model: str, options: dict) -> dict:
    parsed = parse_engine_spec(spec)
    t0 = time.perf_counter()
    engine = create_engine(parsed.name, model=model, **{**options, **parsed.options})
    build_s = time.perf_counter() - t0
    cfg = engine.describe()["model"]["config"]
    work = build_workload("anchor-a", vocab_size=cfg["vocab_size"], max_model_len=options.get("max_model_len", 1536))
    for r in work.requests:
        engine.add_request(r)
    torch.cuda.synchronize()
    decode_ms, mixed_ms, running = [], [], 0
    tokens = 0
    t0 = time.perf_counter()
    while engine.has_unfinished():
        out = engine.step()
        tokens += sum(len(e.token_ids) for e in out.events)
        s = out.stats
        ms = (s.end_ns - s.start_ns) / 1e6
        (decode_ms if s.prefill_tokens == 0 else mixed_ms).append(ms)
        running = max(running, s.running)
    dt = time.perf_counter() - t0
    engine.close()
    del engine
    gc.collect()
    torch.cuda.empty_cache()
    return dict(
        engine=spec, model=model, build_s=round(build_s, 1), run_s=round(dt, 2), out_tok_s=round(tokens / dt),
        steps=len(decode_ms) + len(mixed_ms), decode_steps=len(decode_ms),
        decode_ms_avg=round(sum(decode_ms) / max(1, len(decode_ms)), 2),
        mixed_steps=len(mixed_ms), mixed_ms_sum=round(sum(mixed_ms)), peak_running=running,
    )


def _kernel_table(prof, title: str, rows: int = 16) -> None:
    """GPU time per kernel name over the window, largest first, with its share."""
    events = [e for e in prof.key_averages() if e.device_type.name == "CUDA" and e.self_device_time_total > 0]
    total = sum(e.self_device_time_total for e in events)
    print(f"== {title}: GPU busy {total / 1e3:.1f} ms ==")
    for e in sorted(events, key=lambda e: -e.self_device_time_total)[:rows]:
        t = e.self_device_time_total
        print(f"  {t / 1e3:9.2f} ms {100 * t / total:5.1f}%  x{e.count:<5} {e.key[:90]}")


def profile(model: str, options: dict, steps: int = 12) -> None:
    """Kernel split of a prefill-heavy window (the first steps: full token budgets of prompt
    chunks), a decode window (once every prompt is in, most sequences running) and a tail
    window (32 sequences or fewer left), each with its wall time."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    engine = create_engine("paged", model=model, **options)
    cfg = engine.describe()["model"]["config"]
    work = build_workload("anchor-a", vocab_size=cfg["vocab_size"], max_model_len=1536)
    for r in work.requests:
        engine.add_request(r)
    engine.step()
    reached = {
        "prefill-heavy": lambda s: True,
        "decode": lambda s: s.prefill_tokens == 0 and s.running >= 64,
        "tail": lambda s: s.prefill_tokens == 0 and s.running <= 32,
    }
    for label, ready in reached.items():
        if label != "prefill-heavy":
            while engine.has_unfinished() and not ready(engine.step().stats):
                pass
        torch.cuda.synchronize()
        prefill = decode = 0
        t0 = time.perf_counter()
        with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            for _ in range(steps):
                s = engine.step().stats
                prefill += s.prefill_tokens
                decode += s.decode_tokens
            torch.cuda.synchronize()
        wall = (time.perf_counter() - t0) * 1e3
        _kernel_table(prof, f"paged {model} {label}: {steps} steps, {prefill} prefill + {decode} decode tokens, wall {wall:.0f} ms (profiled)")
    engine.close()
    gc.collect()
    torch.cuda.empty_cache()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="llama-1b")
    p.add_argument("--engines", default="paged")
    p.add_argument("--kv-memory", type=float, default=None, help="GiB")
    p.add_argument("--kv-tokens", type=int, default=None)
    p.add_argument("--async-scheduling", default="true")
    p.add_argument("--profile", action="store_true")
    p.add_argument("--cuda-graphs", default="true")
    p.add_argument("--mixed-graph-tokens", type=int, default=None, help="default: the engines' own")
    args = p.parse_args()
    options = dict(max_model_len=1536, cuda_graphs=args.cuda_graphs == "true", async_scheduling=args.async_scheduling == "true")
    if args.mixed_graph_tokens is not None:
        options["mixed_graph_tokens"] = args.mixed_graph_tokens
    if args.kv_tokens:
        options["kv_tokens"] = args.kv_tokens
    if args.kv_memory:
        options["kv_memory"] = int(args.kv_memory * 2**30)
    print(torch.__version__, torch.cuda.get_device_name(), flush=True)
    rows = []
    for model in args.models.split(","):
        for name in split_specs([args.engines]):
            try:
                rows.append(run(name, model, options))
                print(rows[-1], flush=True)
            except Exception:
                traceback.print_exc()
        if args.profile:
            try:
                profile(model, options)
            except Exception:
                traceback.print_exc()
    keys = list(rows[0]) if rows else []
    print("\t".join(keys))
    for r in rows:
        print("\t".join(str(r[k]) for k in keys))


if __name__ == "__main__":
    main()
