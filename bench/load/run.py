"""`bench load`: drive an OpenAI-compatible server with a workload and write a result directory.

The steps: check the URL (loopback only unless allowed), read the server's model card
(served model, vocabulary, context length), build the workload for that model, turn it
into a plan, warm the server up, run the locust process(es) (bench.load.locust_process),
then summarise the raw records exactly as an in-process run is (bench.metrics.summarize)
and add the load generator's own fidelity check (bench.load.fidelity).
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx

import bench
from bench.load.fidelity import CPU_LIMIT_PCT, LAG_LIMIT_MS, load_fidelity
from bench.load.plan import ENDPOINT, LoadPlan, plan_from_workload
from bench.manifest import build_manifest
from bench.metrics import SLO, summarize
from bench.records import RequestRecord, device_frame, requests_frame, steps_frame
from bench.results import RunResult, load_run, write_run
from bench.runner import warmup_requests_for
from bench.sampler import DeviceSampler
from engines.peers.openai_http import check_url, completion_body, fetch_model_card
from engines.request import ConfigError
from workloads import build_workload

PROJECT_DIR = Path(bench.__file__).resolve().parent.parent
START_MARGIN_S = 90.0  # process start-up, worker connection, plan transfer


@dataclass
class LoadConfig:
    """One `bench load` run. workers: local worker processes (0: one process does it all);
    expect_workers: further workers that will connect from other machines. users: open
    loop's pool of users (default: one per request, at most 512); concurrency: closed loop
    with this many users (overrides the workload's mode)."""

    url: str
    workload: str = "quick"
    served_model: str | None = None
    api_key: str | None = None
    concurrency: int | None = None
    users: int | None = None
    workers: int = 0
    expect_workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_port: int | None = None
    duration_s: float = 120.0
    max_requests: int = 1000
    timeout_s: float = 60.0
    allow_remote: bool = False
    seed: int | None = None
    vocab_size: int | None = None
    max_model_len: int | None = None
    slo: SLO | None = None
    label: str | None = None
    keep_token_ids: bool = True
    warmup_requests: int = 2
    device: str | None = None  # a device of this machine to sample (e.g. the local server's GPU)
    lag_limit_ms: float = LAG_LIMIT_MS
    cpu_limit_pct: float = CPU_LIMIT_PCT
    # CPUs the generator processes may run on (None: any). On a small machine shared with the
    # server, a core of its own keeps the OS from delaying the generator's sends
    generator_cpus: set[int] | None = None

    def validate(self) -> None:
        if self.generator_cpus is not None:
            available = set(range(os.cpu_count() or 1)) if hasattr(os, "sched_setaffinity") else set()
            if not self.generator_cpus or not self.generator_cpus <= available:
                raise ConfigError(f"generator_cpus {sorted(self.generator_cpus)}: expected some of this "
                                  f"machine's CPUs {sorted(available)}")
        for name in ("workers", "expect_workers", "warmup_requests"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.lag_limit_ms <= 0 or not 0 < self.cpu_limit_pct <= 100:
            raise ConfigError(f"lag_limit_ms must be > 0 and cpu_limit_pct in (0, 100], got "
                              f"{self.lag_limit_ms}, {self.cpu_limit_pct}")


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host if host not in ("*", "0.0.0.0") else "", 0))
        return s.getsockname()[1]


def _warm_up(plan: LoadPlan, bodies: list[dict]) -> float:
    """Short requests before the measured load, so first-request costs stay out of it."""
    start = time.perf_counter()
    headers = {"Authorization": f"Bearer {plan.api_key}"} if plan.api_key else {}
    with httpx.Client(base_url=plan.url, headers=headers, timeout=plan.timeout_s) as client:
        for body in bodies:
            with client.stream("POST", ENDPOINT, json=body) as r:
                r.read()
                if r.status_code != 200:
                    raise ConfigError(f"warm-up request to {plan.url}{ENDPOINT} failed: HTTP {r.status_code} {r.text[:300]}")
    return time.perf_counter() - start


def _child_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_DIR), env.get("PYTHONPATH")) if p)
    return env


def _spawn(args: list[str], log: Path, cpus: set[int] | None) -> subprocess.Popen:
    # a session of its own: Ctrl-C reaches `bench load`, which then stops the children in order
    return subprocess.Popen(
        [sys.executable, "-m", "bench.load.locust_process", *args],
        stdout=log.open("w"), stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True,
        preexec_fn=None if cpus is None else (lambda: os.sched_setaffinity(0, cpus)),
    )


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


def _generate(plan: LoadPlan, config: LoadConfig, tmp: Path) -> tuple[dict, str | None]:
    """Run the locust process(es); returns their output and an error (None when clean)."""
    plan_path, out_path = tmp / "plan.json", tmp / "out.json"
    plan_path.write_text(plan.to_json())
    total_workers = config.workers + config.expect_workers
    logs = [tmp / "main.log"]
    workers: list[subprocess.Popen] = []
    if total_workers == 0:
        main = _spawn(["local", "--plan", str(plan_path), "--out", str(out_path)], logs[0], config.generator_cpus)
    else:
        port = config.master_port or _free_port(config.master_bind_host)
        main = _spawn(["master", "--plan", str(plan_path), "--out", str(out_path), "--expect-workers",
                       str(total_workers), "--bind-host", config.master_bind_host, "--bind-port", str(port)], logs[0],
                      config.generator_cpus)
        if config.expect_workers:
            print(f"waiting for {config.expect_workers} remote worker(s): on each machine run\n"
                  f"  bench load-worker --master-host <this machine's address> --master-port {port}",
                  file=sys.stderr)
        master_host = "127.0.0.1" if config.master_bind_host in ("*", "0.0.0.0") else config.master_bind_host
        for i in range(config.workers):
            logs.append(tmp / f"worker{i}.log")
            workers.append(_spawn(["worker", "--master-host", master_host, "--master-port", str(port)], logs[-1],
                                  config.generator_cpus))
    children = [main, *workers]
    limit = plan.duration_s + plan.timeout_s + START_MARGIN_S
    error = None
    try:
        code = main.wait(timeout=limit)
        if code not in (0, 3):
            error = f"load generator exited with code {code}:\n{_tail(logs[0])}"
    except subprocess.TimeoutExpired:
        error = f"load generator did not finish within {limit:g} s"
    except KeyboardInterrupt:
        main.send_signal(signal.SIGINT)  # it writes what finished, then exits
        try:
            main.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        error = "interrupted by the user (Ctrl-C)"
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
    if not out_path.exists():
        detail = "\n".join(f"--- {p.name}\n{_tail(p)}" for p in logs)
        raise RuntimeError(f"{error or 'load generator wrote no results'}\n{detail}")
    return json.loads(out_path.read_text()), error


def _records(plan: LoadPlan, output: dict) -> tuple[list[RequestRecord], list[str]]:
    """Records in plan order. A planned request without a result ends "cancelled" (the load
    stopped first), except closed-loop requests never started because duration_s passed:
    those are left out and listed."""
    by_id = {r["request_id"]: RequestRecord(**r) for r in output["records"]}
    records, not_sent = [], []
    for p in plan.requests:
        record = by_id.get(p.id)
        if record is None:
            if output["complete"] and plan.mode == "closed":
                not_sent.append(p.id)
                continue
            record = RequestRecord(p.id, round(p.arrival_s * 1e9), p.prompt_tokens, p.max_tokens, status="cancelled",
                                   error="no result: the load generator stopped before this request finished")
        records.append(record)
    return records, not_sent


def run_load(config: LoadConfig, out_dir: str | Path) -> RunResult:
    """Run one load and write its result directory at `out_dir` (which must not exist)."""
    config.validate()
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ConfigError(f"output directory {out_dir} already exists; choose another --out")
    base_url = check_url(config.url, config.allow_remote)
    card = fetch_model_card(base_url, config.api_key)
    served_model = config.served_model or card.get("id")
    vocab_size = config.vocab_size or card.get("vocab_size")
    max_model_len = config.max_model_len or card.get("max_model_len")
    if not vocab_size or not max_model_len:
        raise ConfigError(f"{base_url}/v1/models gives no {'vocab_size' if not vocab_size else 'max_model_len'}; "
                          f"pass --vocab-size and --max-model-len for this server's model")
    workload = build_workload(config.workload, vocab_size=int(vocab_size), max_model_len=int(max_model_len),
                              seed=config.seed)
    plan = plan_from_workload(
        workload, url=base_url, served_model=served_model, concurrency=config.concurrency, users=config.users,
        duration_s=config.duration_s, max_requests=config.max_requests, timeout_s=config.timeout_s,
        api_key=config.api_key, keep_token_ids=config.keep_token_ids,
    )
    total_workers = config.workers + config.expect_workers
    if total_workers > min(plan.users, len(plan.requests)):
        raise ConfigError(f"{total_workers} workers for {plan.users} users and {len(plan.requests)} requests: "
                          f"every worker needs at least one of each")
    warmup = [completion_body(r, served_model) for r in warmup_requests_for(workload, config.warmup_requests)]
    warmup_s = _warm_up(plan, warmup)
    sampler = DeviceSampler(config.device).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            output, error = _generate(plan, config, Path(tmp))
    finally:
        samples = sampler.stop()
    start_epoch_ns = output["start_epoch_ns"]
    t0_perf = time.perf_counter_ns() + (start_epoch_ns - time.time_ns())  # this process's clock at the start
    device = [dataclasses.replace(s, t_ns=s.t_ns - t0_perf) for s in samples]
    records, not_sent = _records(plan, output)
    fidelity = load_fidelity(plan, [dataclasses.asdict(r) for r in records], output["processes"],
                             not_sent=len(not_sent), lag_limit_ms=config.lag_limit_ms,
                             cpu_limit_pct=config.cpu_limit_pct)
    requests = requests_frame(records)
    summary = summarize(requests, steps_frame([]), device_frame(device), slo=config.slo)
    summary["load"] = fidelity
    status = "complete" if error is None else ("interrupted" if "interrupted" in error else "failed")
    if not_sent:
        workload.notes.append(f"{len(not_sent)} requests not sent: duration_s={config.duration_s:g} passed first")
    engine_info = {
        "name": "openai",
        "options": {"url": base_url, "served_model": served_model, "client": "bench load (locust)"},
        "model": {"name": served_model, "server": base_url, "config": {"vocab_size": vocab_size},
                  "max_model_len": max_model_len, "engine": card.get("engine")},
    }
    run = {
        "mode": plan.mode, "seed": config.seed, "started_at": datetime.fromtimestamp(start_epoch_ns / 1e9, timezone.utc)
        .isoformat(timespec="milliseconds"), "status": status, "warmup_s": warmup_s, "error": error,
    }
    load_block = {
        "url": base_url, "mode": plan.mode, "users": plan.users, "workers": config.workers,
        "expect_workers": config.expect_workers, "duration_s": config.duration_s, "max_requests": config.max_requests,
        "timeout_s": config.timeout_s, "generator_limited": fidelity["generator_limited"],
        "warnings": fidelity["warnings"], "not_sent": not_sent,
    }
    label = config.label or f"http:{card.get('engine') or served_model}"
    manifest = build_manifest(engine_info=engine_info, workload=workload, run=run, device_sampler=sampler.describe(),
                              label=label, extra={"load": load_block})
    write_run(out_dir, manifest, requests, steps_frame([]), device_frame(device), summary)
    return load_run(out_dir)
