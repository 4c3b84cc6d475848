"""`bench load` and `bench load-worker`: a workload against an OpenAI-compatible server,
through locust (bench.load)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from bench.commands.options import non_negative_int, positive_float, positive_int

EXIT_CODES = {"complete": 0, "failed": 1, "interrupted": 130}


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "load",
        help="drive an OpenAI-compatible server with a workload (locust)",
        description="Send a workload to an OpenAI-compatible server (ours, vLLM, SGLang, TGI, llama.cpp) "
        "through locust, time every streamed chunk, and write the same result directory as `bench run`, "
        "plus a load-generator fidelity check. Loopback URLs only unless --allow-remote. "
        "Exit code: 0 complete, 1 failed, 2 bad input, 130 interrupted.",
    )
    p.add_argument("--url", required=True, help="server base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--workload", default="quick", help="preset, spec file or inline spec (default: quick)")
    p.add_argument("--workload-seed", type=int, help="override the workload spec's seed")
    p.add_argument("--served-model", help="model id to request (default: the first of /v1/models)")
    p.add_argument("--api-key", help="sent as 'Authorization: Bearer KEY'")
    g = p.add_argument_group("load shape and bounds")
    g.add_argument("--concurrency", type=positive_int, help="closed loop: N users sending back to back (default: the workload's own mode)")
    g.add_argument("--users", type=positive_int, help="open loop: users available to send on schedule (default: one per request, at most 512)")
    g.add_argument("--duration-s", type=positive_float, default=120.0, help="send nothing after this many seconds (default: 120)")
    g.add_argument("--max-requests", type=positive_int, default=1000, help="send at most the first N requests (default: 1000)")
    g.add_argument("--timeout-s", type=positive_float, default=60.0, help="per-request limit, connect to last byte (default: 60)")
    g.add_argument("--allow-remote", action="store_true", help="allow a URL that is not on this machine")
    g = p.add_argument_group("distributed load generation")
    g.add_argument("--workers", type=non_negative_int, default=0, help="local locust worker processes (default: 0, one process)")
    g.add_argument("--expect-workers", type=non_negative_int, default=0, help="workers that will connect from other machines (bench load-worker)")
    g.add_argument("--master-bind-host", default="127.0.0.1", help="address the master listens on for workers (0.0.0.0 for other machines)")
    g.add_argument("--master-port", type=int, help="master port for workers (default: a free port)")
    g = p.add_argument_group("measurement")
    g.add_argument("--vocab-size", type=positive_int, help="the server model's vocabulary (when /v1/models does not say)")
    g.add_argument("--max-model-len", type=positive_int, help="the server model's context length (when /v1/models does not say)")
    g.add_argument("--slo-ttft-ms", type=positive_float)
    g.add_argument("--slo-tpot-ms", type=positive_float)
    g.add_argument("--slo-e2e-ms", type=positive_float)
    g.add_argument("--warmup-requests", type=non_negative_int, default=2, help="short requests before the load (default: 2)")
    g.add_argument("--device", help="a device of this machine to sample during the load, e.g. cuda:0 for a local server")
    g.add_argument("--lag-limit-ms", type=positive_float, default=5.0, help="p99 send lag above which the generator counts as the limit (default: 5)")
    g.add_argument("--cpu-limit-pct", type=positive_float, default=90.0, help="generator CPU above which it counts as the limit (default: 90)")
    g.add_argument("--no-token-ids", dest="keep_token_ids", action="store_false", help="do not store output token ids")
    g.add_argument("--generator-cpus", type=cpu_list, help="CPUs for the generator processes, e.g. 0 or 0,1 "
                   "(a server on the same machine then cannot delay the sends; default: any)")
    p.add_argument("--label", help="name in tables and reports (default: http:<engine or model>)")
    p.add_argument("--out", type=Path, help="result directory to create (default: results/load-<UTC time>)")
    p.set_defaults(func=main)

    w = subparsers.add_parser(
        "load-worker",
        help="a locust worker for `bench load --expect-workers N` on another machine",
        description="Connect to a `bench load` master and send its share of the load. The plan (URL, "
        "requests, schedule) comes from the master; this machine needs the harness installed and "
        "a clock synchronised with the master's (NTP), since sends are scheduled by wall clock.",
    )
    w.add_argument("--master-host", required=True, help="the master's address")
    w.add_argument("--master-port", type=int, default=5557, help="the master's --master-port (default: 5557)")
    w.set_defaults(func=worker_main)


def cpu_list(text: str) -> set[int]:
    try:
        cpus = {int(c) for c in text.split(",") if c.strip()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CPU numbers separated by commas, e.g. 0,1")
    if not cpus or min(cpus) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected CPU numbers >= 0")
    return cpus


def main(args: argparse.Namespace) -> int:
    from rich.console import Console

    from bench.compare import default_out_dir
    from bench.load import LoadConfig, run_load
    from bench.metrics import SLO
    from bench.table import print_table, say

    slo = SLO(ttft_ms=args.slo_ttft_ms, tpot_ms=args.slo_tpot_ms, e2e_ms=args.slo_e2e_ms)
    config = LoadConfig(
        url=args.url, workload=args.workload, served_model=args.served_model, api_key=args.api_key,
        concurrency=args.concurrency, users=args.users, workers=args.workers, expect_workers=args.expect_workers,
        master_bind_host=args.master_bind_host, master_port=args.master_port, duration_s=args.duration_s,
        max_requests=args.max_requests, timeout_s=args.timeout_s, allow_remote=args.allow_remote,
        seed=args.workload_seed, vocab_size=args.vocab_size, max_model_len=args.max_model_len,
        slo=slo if slo.given else None, label=args.label, keep_token_ids=args.keep_token_ids,
        warmup_requests=args.warmup_requests, device=args.device, lag_limit_ms=args.lag_limit_ms,
        cpu_limit_pct=args.cpu_limit_pct, generator_cpus=args.generator_cpus,
    )
    result = run_load(config, args.out or default_out_dir("load"))
    console = Console()
    print_table([result], console)
    load = result.summary["load"]
    lag = load["send_lag_ms"]
    rate = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
    say(console, f"load: {load['requests_sent']}/{load['requests_planned']} sent, offered {rate(load['offered_rate_req_per_s'])} "
                 f"req/s, achieved {rate(load['achieved_rate_req_per_s'])} req/s"
                 + (f", send lag p50 {lag['p50']:.2f} ms p99 {lag['p99']:.2f} ms" if lag else ""))
    for warning in load["warnings"]:
        say(console, f"warning: {warning}")
    run = result.manifest["run"]
    if run["status"] != "complete":
        say(console, f"load {run['status']}: {run['error']}")
    say(console, f"result: {result.path}")
    return EXIT_CODES.get(run["status"], 1)


def worker_main(args: argparse.Namespace) -> int:
    # locust monkey-patches the process that imports it: run it in a fresh one
    return subprocess.call([sys.executable, "-m", "bench.load.locust_process", "worker",
                            "--master-host", args.master_host, "--master-port", str(args.master_port)])
