"""Remake the checked-in result directories the regression tests read.

    /work/venv/bin/python tests/bench/regression/data/make_fixtures.py

Each run is simulated, not measured: a tiny step-level model of a batching engine (naive,
static, continuous, paged) over a fixed offline workload, where a step takes
(3 ms + 0.02 ms per token computed) x lognormal noise and every token reaches the client at
the end of the step that made it. Counters (tokens, padding, steps, idle slots) are then a
pure function of the workload and the policy, and only the timings change with the seed: the
same relation as between two real runs of the same code. summary.json comes from
bench.metrics.summarize over the written records, so the two always agree.

Cases (folder: what it is)
    base/        continuous, 3 repeats (seeds 0-2): the baseline
    same/        continuous, 3 repeats (seeds 10-12): the same code run again
    slow/        continuous, 3 repeats, every step 25% longer: a 20% throughput drop
    other-machine/  one continuous run whose manifest names another CPU
    padded/      one continuous run with one extra pad token in its first step, noisy steps
    noisy/       an open-loop HTTP-like run, base and current, TTFT with huge variance and a
                 current median 35% higher: a large change inside the noise
    ladder/      naive, static, continuous, paged: one run each, same workload (the CI ladder)
    ladder-broken/  continuous whose slots wait for the whole batch (refill broken)
    base.json, ladder-baseline.json: baseline files saved from base/ and ladder/
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT))

from bench.metrics import summarize  # noqa: E402
from bench.records import REQUEST_COLUMNS, STEP_COLUMNS, device_frame  # noqa: E402
from bench.regression.baseline import save_baseline  # noqa: E402
from bench.results import load_run, write_run  # noqa: E402
from engines.request import Request  # noqa: E402
from workloads.workload import Workload  # noqa: E402

HERE = Path(__file__).resolve().parent
MAX_LEN = 160
MACHINE = {
    "hostname": "runner-7f3a", "platform": "Linux-6.8.0-x86_64-with-glibc2.39", "python": "3.12.3",
    "cpu": "AMD EPYC 7763 64-Core Processor", "cpu_count": 4, "memory_bytes": 16 * 2**30,
    "gpu": None, "gpu_count": 0, "driver": None, "cuda": None, "torch": "2.13.0",
    "transformers": "5.24.0",
}
MODEL = {
    "name": "tiny", "path": None, "dtype": "float32", "device": "cpu", "parameters": 2_359_296,
    "config": {"hidden_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
               "num_key_value_heads": 2, "intermediate_size": 384, "vocab_size": 2048},
}


def offline_workload() -> Workload:
    rng = np.random.default_rng(1234)
    requests = [
        Request(f"r{i:03d}", tuple(int(t) for t in rng.integers(3, 2048, int(p))), int(n))
        for i, (p, n) in enumerate(zip(rng.integers(16, 129, 160), rng.integers(1, 25, 160)))
    ]
    return Workload("ci-mixed", requests, spec={"preset": "ci-mixed", "seed": 1234})


def simulate(policy: str, workload: Workload, seed: int, *, cost=1.0, noise=0.05,
             max_batch=16, extra_padding=0, refill=True):
    """Step-level simulation -> (requests frame, steps frame). Policies as ARCHITECTURE.md's
    engine ladder; `refill=False` makes a continuous engine fill its slots only when all are free (a
    broken refill: it behaves like static batching with chunked prefill)."""
    rng = np.random.default_rng(seed)
    reqs = workload.requests
    prompt = {r.id: len(r.prompt_ids) for r in reqs}
    want = {r.id: r.max_new_tokens for r in reqs}
    made = {r.id: 0 for r in reqs}
    chunks: dict[str, list[int]] = {r.id: [] for r in reqs}
    waiting = [r.id for r in reqs]
    running: list[str] = []
    batch: list[str] = []  # barrier engines: the batch in flight, finished rows included
    steps, t = [], 0
    block = 16
    filling = True
    while waiting or running:
        s = dict.fromkeys(STEP_COLUMNS, 0)
        s["step"] = len(steps)
        emit = [rid for rid in running]  # decode one token each
        prefill = []
        if policy in ("naive", "static"):
            if not running:
                batch = waiting[:max_batch]
                del waiting[:max_batch]
                prefill, emit = list(batch), []
                longest = max(prompt[r] for r in batch)
                if policy == "naive":
                    s["padded_tokens"] = sum(longest - prompt[r] for r in batch)
            elif policy == "naive":
                s["wasted_decode_tokens"] = len(batch) - len(running)
            elif waiting:
                s["idle_slots"] = max_batch - len(running)
        else:
            filling = filling or not running
            if refill or filling:
                budget = 512 - len(emit)
                while waiting and len(running) + len(prefill) < max_batch and prompt[waiting[0]] <= budget:
                    budget -= prompt[waiting[0]]
                    prefill.append(waiting.pop(0))
                filling = len(running) + len(prefill) < max_batch
            elif waiting:
                s["idle_slots"] = max_batch - len(running)
        if s["step"] == 0:
            s["padded_tokens"] += extra_padding
        s["prefill_tokens"] = sum(prompt[r] for r in prefill)
        s["decode_tokens"] = len(emit)
        computed = s["prefill_tokens"] + s["decode_tokens"] + s["padded_tokens"] + s["wasted_decode_tokens"]
        s["start_ns"] = t
        t += int((3e6 + 2e4 * computed) * cost * rng.lognormal(0.0, noise))
        s["end_ns"] = t
        running += prefill
        for rid in emit + prefill:
            made[rid] += 1
            chunks[rid].append(t)
        if any(made[r] >= want[r] for r in running):
            filling = False  # broken refill: a freed slot waits for the whole batch
        running = [r for r in running if made[r] < want[r]]
        ctx = [prompt[r] + made[r] for r in running]
        s["num_seqs"] = len(emit) + len(prefill)
        s["sampled_tokens"] = len(emit) + len(prefill)
        s["kv_tokens_used"] = sum(ctx)
        s["kv_tokens_reserved"] = (
            sum(-(-c // block) * block for c in ctx) if policy == "paged"
            else len(batch) * MAX_LEN if policy == "naive" else len(running) * MAX_LEN
        )
        s["kv_tokens_capacity"] = max_batch * MAX_LEN
        s["queue_len"], s["running"] = len(waiting), len(running)
        steps.append(s)
        t += 20_000  # the harness's own bookkeeping between steps
    rows = []
    for i, r in enumerate(reqs):
        times = chunks[r.id]
        rows.append({
            "request_id": r.id, "arrival_ns": 0, "prompt_tokens": prompt[r.id],
            "max_new_tokens": want[r.id], "send_ns": 1000 * i, "first_token_ns": times[0],
            "finish_ns": times[-1] + 5000, "output_tokens": len(times), "status": "ok",
            "error": None, "chunk_times_ns": times, "chunk_tokens": [1] * len(times),
            "output_token_ids": None,
        })
    return pd.DataFrame(rows, columns=REQUEST_COLUMNS), pd.DataFrame(steps, columns=STEP_COLUMNS)


def open_loop_http(seed: int, ttft_median_ms: float):
    """60 requests arriving at 2/s to a server with heavy-tailed queueing (TTFT lognormal,
    sigma 1.0) and steady decoding (25 ms a token, 10% jitter). No step stats (HTTP)."""
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(0.5e9, 60)).astype(np.int64)
    lengths = np.random.default_rng(77).integers(8, 33, 60)  # the workload: fixed
    rows = []
    for i, (arrival, n) in enumerate(zip(arrivals, lengths)):
        send = int(arrival) + 200_000
        first = send + int(ttft_median_ms * 1e6 * rng.lognormal(0.0, 1.0))
        gaps = (25e6 * rng.lognormal(0.0, 0.1, int(n) - 1)).astype(np.int64)
        times = [first] + list(first + np.cumsum(gaps))
        rows.append({
            "request_id": f"q{i:02d}", "arrival_ns": int(arrival), "prompt_tokens": 200,
            "max_new_tokens": int(n), "send_ns": send, "first_token_ns": int(times[0]),
            "finish_ns": int(times[-1]) + 300_000, "output_tokens": int(n), "status": "ok",
            "error": None, "chunk_times_ns": [int(x) for x in times], "chunk_tokens": [1] * int(n),
            "output_token_ids": None,
        })
    return pd.DataFrame(rows, columns=REQUEST_COLUMNS), pd.DataFrame(columns=STEP_COLUMNS)


def manifest(label: str, engine: dict, workload: dict, seed: int, commit: str, machine=None) -> dict:
    return {
        "label": label,
        "harness": {"version": "0.1.0", "git_commit": commit, "git_dirty": False},
        "engine": engine,
        "model": MODEL,
        "workload": workload,
        "run": {"mode": workload["mode"], "seed": seed, "started_at": "2025-01-01T00:00:00+00:00",
                "status": "complete", "warmup_s": 0.05, "error": None},
        "machine": {**MACHINE, "hostname": f"runner-{seed:04x}", **(machine or {})},
        "device_sampler": {"source": "cpu", "interval_s": 0.2},
    }


def write(path: Path, frames, man: dict) -> None:
    requests, steps = frames
    device = device_frame([])
    write_run(path, man, requests, steps, device, summarize(requests, steps, device))


def engine_of(policy: str, **extra) -> dict:
    options = {"max_batch": 24 if policy == "paged" else 16, "token_budget": 512,
               "max_model_len": MAX_LEN, **extra}
    return {"name": policy, "kind": "in-repo", "options": options}


def main() -> None:
    for old in HERE.iterdir():
        if old.is_dir() and old.name != "__pycache__":
            shutil.rmtree(old)
    wl = offline_workload()
    desc = wl.describe()

    def run(folder, seed, commit, policy="continuous", machine=None, repeat="", **sim):
        # laid out as `bench compare --repeat N` writes: OUT/<label>__<workload>__r<k>
        batch = 24 if policy == "paged" else 16
        frames = simulate(policy, wl, seed, max_batch=batch, **sim)
        write(HERE / folder / f"{policy}__ci-mixed{repeat}", frames,
              manifest(policy, engine_of(policy), desc, seed, commit, machine))

    for i in range(3):
        r = f"__r{i + 1}"
        run("base", i, "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0", repeat=r)
        run("same", 10 + i, "b2c3d4e5f6a7b8c9d0e1b2c3d4e5f6a7b8c9d0e1", repeat=r)
        run("slow", 20 + i, "c3d4e5f6a7b8c9d0e1f2c3d4e5f6a7b8c9d0e1f2", cost=1.25, repeat=r)
    run("other-machine", 30, "b2c3d4e5f6a7b8c9d0e1b2c3d4e5f6a7b8c9d0e1",
        machine={"cpu": "Intel(R) Xeon(R) Platinum 8375C CPU @ 2.90GHz", "cpu_count": 8})
    run("padded", 40, "d4e5f6a7b8c9d0e1f2a3d4e5f6a7b8c9d0e1f2a3", extra_padding=1, noise=0.3)
    for policy in ("naive", "static", "continuous", "paged"):
        run("ladder", 50, "e5f6a7b8c9d0e1f2a3b4e5f6a7b8c9d0e1f2a3b4", policy=policy)
    run("ladder-broken", 51, "f6a7b8c9d0e1f2a3b4c5f6a7b8c9d0e1f2a3b4c5", refill=False)

    http = {"name": "http", "kind": "peer", "options": {"base_url": "http://127.0.0.1:8000/v1"}}
    open_desc = {"name": "ci-open", "mode": "open", "concurrency": None, "num_requests": 60,
                 "prompt_tokens": 12000, "max_new_tokens": 1203, "content_hash": "9" * 64,
                 "spec": {"preset": "ci-open"}, "notes": []}
    for side, seed, median in (("base", 60, 150.0), ("current", 61, 150.0 * 1.35)):
        write(HERE / "noisy" / side / "http__ci-open", open_loop_http(seed, median),
              manifest("http", http, open_desc, seed, "a1b2c3d4e5f6a7b8c9d0a1b2c3d4e5f6a7b8c9d0"))

    save_baseline([load_run(p) for p in sorted((HERE / "base").iterdir())], HERE / "base.json")
    save_baseline([load_run(p) for p in sorted((HERE / "ladder").iterdir())], HERE / "ladder-baseline.json")


if __name__ == "__main__":
    main()
