"""`bench table`: the GPU table, engines x model shapes on one workload, in one command."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.options import add_run_options, byte_size, positive_int, run_options_from_args, split_specs


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "table",
        help="engines x model shapes on one workload (default: the H200 table on anchor-a)",
        description="Run every engine on the workload for each model shape, each run in a fresh "
        "process, then print one table (output tok/s, TTFT and TPOT p50/p99, roofline "
        "efficiency, GPU utilisation, output agreement, speed-up over hf-cb) and write "
        "OUT/report.html. The in-repo engines share --kv-memory and --max-model-len.",
    )
    p.add_argument("--models", nargs="+", action="extend", metavar="MODEL", help="model presets or checkpoints (default: llama-1b llama-8b)")
    p.add_argument("--engines", nargs="+", action="extend", metavar="SPEC", help="engine specs (default: the four in-repo engines, hf-generate, hf-cb, hf-cb:use_cuda_graph=true)")
    p.add_argument("--workload", default="anchor-a", help="workload spec (default: anchor-a)")
    p.add_argument("--kv-memory", type=byte_size, default=None, help="KV cache bytes for every in-repo engine, e.g. 24GiB (default: the engine's own)")
    p.add_argument("--kv-tokens", type=positive_int, default=None, help="KV cache size in tokens for every in-repo engine (wins over --kv-memory; the same for every model shape)")
    p.add_argument("--max-model-len", type=positive_int, default=1536, help="max_model_len of the in-repo engines (default 1536: anchor-a's longest request)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--no-isolate", action="store_true", help="run every engine in this process")
    p.add_argument("--resume", action="store_true", help="keep the complete runs already in OUT and run only the missing, failed or interrupted ones (set aside as <dir>.incomplete-N): a table too long for one sitting runs in several commands")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None)
    p.add_argument("--seed", type=int, default=0)
    add_run_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.gpu_table import DEFAULT_ENGINES, DEFAULT_MODELS, run_table

    # no engine options for every engine: the shared ones below go to in-repo engines only
    options = run_options_from_args(args, engine_options={})
    shared = {"max_model_len": args.max_model_len}
    if args.kv_memory:
        shared["kv_memory"] = args.kv_memory
    if args.kv_tokens:
        shared["kv_tokens"] = args.kv_tokens
    runs, interrupted = run_table(
        split_specs(args.models) if args.models else DEFAULT_MODELS,
        split_specs(args.engines) if args.engines else DEFAULT_ENGINES,
        args.workload,
        args.out,
        options,
        in_repo_options=shared,
        isolate=not args.no_isolate,
        resume=args.resume,
    )
    if interrupted:
        return 130
    return 1 if any(r.manifest["run"]["status"] != "complete" for r in runs) else 0
