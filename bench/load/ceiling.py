"""Benchmarks of the load generator itself, run with `python -m bench.load.ceiling`.

1. ceiling: how much load one generator process drives against a minimal endpoint (our
   server with the mock engine, step_time_s=0) while p99 send lag stays under 1 ms: a sweep
   of constant arrival rates, short outputs for requests/s and long ones for streamed
   tokens/s. The server runs as `bench serve` in its own process. With --pin, server and
   generator get a core each (the server is one Python process, bound by its GIL to about
   one core anyway), so that neither delays the other's wake-ups; on a host shared with
   other work, pinning hurts instead (a pinned process cannot move off a busy core), so it
   is off by default. Each point shows both sides' CPU and how much of the generator's time
   the host took away (a busy loop's lost time, measured right after the point): when that
   is high, the lag measures the host, not the generator.
2. http-vs-inprocess: the same engine and workload run in-process (bench.session.run_one)
   and over HTTP (`bench load` against `bench serve`'s app), so the cost of serving over HTTP
   shows in TTFT, TPOT and throughput.

    python -m bench.load.ceiling ceiling [--seconds 3] [--rates 50,100,...]
    python -m bench.load.ceiling http-vs-inprocess [--engine mock:step_time_s=0.002] [--workload ...]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import httpx
import psutil

from bench.compare import default_out_dir
from bench.engine_spec import parse_engine_spec
from bench.load.run import LoadConfig, run_load
from bench.serve import start_server
from bench.session import run_one
from engines.registry import create_engine

LAG_TARGET_MS = 1.0
VOCAB, MAX_LEN = 32000, 4096


class CpuSampler:
    """A process's CPU (the server's) over wall-clock windows."""

    def __init__(self, pid: int | None = None, interval_s: float = 0.1):
        self._proc = psutil.Process(pid)
        self._points: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.interval_s = interval_s

    def _loop(self) -> None:
        while not self._stop.is_set():
            t = self._proc.cpu_times()
            self._points.append((time.time(), t.user + t.system))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> CpuSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def pct_between(self, start: float, end: float) -> float | None:
        inside = [p for p in self._points if start <= p[0] <= end]
        if len(inside) < 2:
            return None
        (t0, c0), (t1, c1) = inside[0], inside[-1]
        return 100 * (c1 - c0) / (t1 - t0)


def _point(result, cpu: CpuSampler, offered: float | None) -> dict:
    s, load = result.summary, result.summary["load"]
    start = datetime.fromisoformat(result.manifest["run"]["started_at"]).timestamp()
    lag = load["send_lag_ms"] or {}
    return {
        "offered_req_per_s": offered,
        "achieved_req_per_s": load["achieved_rate_req_per_s"],
        "ok": s["counts"]["ok"],
        "total": s["counts"]["total"],
        "output_tok_per_s": s["output_tok_per_s"],
        "send_lag_p50_ms": lag.get("p50"),
        "send_lag_p99_ms": lag.get("p99"),
        "send_lag_max_ms": lag.get("max"),
        "client_busy_pct": load["client_cpu_busy_pct_max"],
        "server_cpu_pct": cpu.pct_between(start, start + (s["duration_s"] or 0)),
        "ttft_p50_ms": (s["ttft_ms"] or {}).get("p50"),
        "tpot_p50_ms": (s["tpot_ms"] or {}).get("p50"),
        "generator_limited": load["generator_limited"],
    }


def host_noise(cpus: set[int] | None, seconds: float = 1.0) -> dict:
    """How much a busy loop on the generator's CPUs loses to everything else on the host
    (other processes, the hypervisor): gaps > 0.2 ms between clock reads. A noisy host
    delays sends whatever the generator does, so the ceiling is printed beside this."""
    saved = os.sched_getaffinity(0) if cpus else None
    if cpus:
        os.sched_setaffinity(0, cpus)
    try:
        gaps, t = [], time.perf_counter_ns()
        end = t + int(seconds * 1e9)
        while t < end:
            now = time.perf_counter_ns()
            if now - t > 200_000:
                gaps.append((now - t) / 1e6)
            t = now
    finally:
        if saved:
            os.sched_setaffinity(0, saved)
    return {"lost_pct": 100 * sum(gaps) / (seconds * 1e3), "gaps_over_0_2ms": len(gaps), "max_gap_ms": max(gaps, default=0.0)}


def _pin(cpus: set[int]):
    return lambda: os.sched_setaffinity(0, cpus)


def _start_pinned_server(port: int, cpu: int | None) -> subprocess.Popen:
    engine = f"mock:vocab_size={VOCAB},max_model_len={MAX_LEN},step_time_s=0"
    server = subprocess.Popen(
        [sys.executable, "-m", "bench", "serve", "--engine", engine, "--port", str(port), "--log-level", "warning"],
        preexec_fn=None if cpu is None else _pin({cpu}),
    )
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError("the mock server did not start")
        time.sleep(0.2)


def median_rows(points: list[dict], key: str) -> list[dict]:
    """One row per value of `key`: the median of each number over the repeats (a noisy host
    moves single runs a lot), with the p99 send lag's range beside it."""
    rows = []
    for value in dict.fromkeys(p[key] for p in points):
        group = [p for p in points if p[key] == value]
        row = {}
        for name in group[0]:
            values = [p[name] for p in group if isinstance(p[name], (int, float)) and not isinstance(p[name], bool)]
            row[name] = statistics.median(values) if values else group[0][name]
        row["generator_limited"] = f"{sum(bool(p['generator_limited']) for p in group)}/{len(group)}"
        lags = [p["send_lag_p99_ms"] for p in group if p["send_lag_p99_ms"] is not None]
        row["send_lag_p99_ms_range"] = f"{min(lags):.2f}-{max(lags):.2f}" if lags else "-"
        row["runs"] = len(group)
        rows.append(row)
    return rows


def ceiling(out_dir: Path, rates: list[float], seconds: float, output_tokens: int, prompt_tokens: int = 16,
            pin: bool = False, repeat: int = 1) -> list[dict]:
    """`repeat` loads per rate against the mock engine (step_time_s=0) served by `bench serve`
    in its own process; stops once the median achieved rate falls below 80% of the offered."""
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    # pinned: the server (and this process, with its samplers) on the last core, the generator on the rest
    server_cpu = cpus[-1] if pin and len(cpus) >= 2 else None
    generator_cpus = set(cpus[:-1]) if server_cpu is not None else None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = _start_pinned_server(port, server_cpu)
    noise = host_noise(generator_cpus)
    print(f"host noise on the generator's CPUs {sorted(generator_cpus or cpus)}: {json.dumps(noise)}", file=sys.stderr)
    points = []
    try:
        if server_cpu is not None:
            os.sched_setaffinity(0, {server_cpu})
        with CpuSampler(server.pid) as cpu:
            for rate in rates:
                n = max(2, int(rate * seconds))
                spec = (f"synthetic:num_requests={n},prompt=fixed({prompt_tokens}),output=fixed({output_tokens}),"
                        f"arrival=constant({rate:g})")
                for k in range(repeat):
                    config = LoadConfig(url=f"http://127.0.0.1:{port}", workload=spec, max_requests=n,
                                        duration_s=seconds + 1, generator_cpus=generator_cpus)
                    result = run_load(config, out_dir / f"out{output_tokens}-rate{rate:g}-r{k}")
                    noise = round(host_noise(generator_cpus, 0.3)["lost_pct"], 1)
                    point = {**_point(result, cpu, rate), "host_lost_pct": noise}
                    points.append(point)
                    print(json.dumps(point), file=sys.stderr)
                row = median_rows([p for p in points if p["offered_req_per_s"] == rate], "offered_req_per_s")[0]
                if (row["achieved_req_per_s"] or 0) < 0.8 * rate or row["ok"] < n:
                    break
    finally:
        server.terminate()
        server.wait(timeout=30)
        if server_cpu is not None:
            os.sched_setaffinity(0, set(cpus))
    return points


def best_under_target(points: list[dict]) -> dict | None:
    """The highest offered rate delivered on time: p99 lag < 1 ms, >= 95% of the rate, all ok
    (applied to the per-rate medians)."""
    good = [p for p in points if p["send_lag_p99_ms"] is not None and p["send_lag_p99_ms"] < LAG_TARGET_MS
            and p["achieved_req_per_s"] >= 0.95 * p["offered_req_per_s"] and p["ok"] == p["total"]]
    return max(good, key=lambda p: p["offered_req_per_s"], default=None)


def http_vs_inprocess(out_dir: Path, engine_spec: str, model: str, workload: str, repeat: int = 1) -> list[dict]:
    """The same engine and workload in-process, over HTTP with `bench load`, and over HTTP
    through the runner (the `openai` engine), `repeat` times in turn; medians per way."""
    spec = parse_engine_spec(engine_spec)
    runs = []
    for k in range(repeat):
        runs.append(("in-process (bench run)", run_one(engine_spec, model, workload, out_dir / f"in-process-r{k}",
                                                       progress=False, roofline=False)))
        engine = create_engine(spec.name, model=model, **spec.options)
        try:
            with start_server(engine) as srv:
                load = run_load(LoadConfig(url=srv.url, workload=workload), out_dir / f"http-load-r{k}")
                runs.append(("HTTP, bench load", load))
                peer = run_one(f"openai:url={srv.url}", model, workload, out_dir / f"http-runner-r{k}",
                               progress=False, roofline=False)
                runs.append(("HTTP, bench run --engine openai", peer))
        finally:
            engine.close()
    points = []
    for how, r in runs:
        s = r.summary
        points.append({
            "how": how,
            "ok": s["counts"]["ok"],
            "output_tok_per_s": s["output_tok_per_s"],
            "ttft_p50_ms": s["ttft_ms"]["p50"], "ttft_p99_ms": s["ttft_ms"]["p99"],
            "tpot_p50_ms": (s["tpot_ms"] or {}).get("p50"), "tpot_p99_ms": (s["tpot_ms"] or {}).get("p99"),
            "e2e_p50_ms": s["e2e_ms"]["p50"],
        })
    rows = []
    for how in dict.fromkeys(p["how"] for p in points):
        group = [p for p in points if p["how"] == how]
        rows.append({"how": how, **{k: statistics.median(p[k] for p in group) for k in group[0] if k != "how"},
                     "runs": len(group)})
    return rows


def _table(rows: list[dict]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return "-" if v is None else str(v)

    head = list(rows[0])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(r[k]) for k in head) + " |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.load.ceiling", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", required=True)
    c = sub.add_parser("ceiling", help="the load generator's own ceiling against a minimal endpoint")
    c.add_argument("--seconds", type=float, default=3.0, help="length of each load (default: 3)")
    c.add_argument("--rates", default="50,100,200,400,800,1600", help="request rates to try, req/s")
    c.add_argument("--token-rates", default="10,20,40,80", help="request rates for the long-output sweep")
    c.add_argument("--long-output", type=int, default=256, help="output tokens of the long-output sweep (default: 256)")
    c.add_argument("--pin", action="store_true", help="a core for the server, the others for the generator (quiet hosts only)")
    c.add_argument("--repeat", type=int, default=3, help="loads per rate; the table shows medians (default: 3)")
    h = sub.add_parser("http-vs-inprocess", help="the same engine and workload in-process and over HTTP")
    h.add_argument("--engine", default="mock:vocab_size=32000,max_model_len=4096,step_time_s=0.002")
    h.add_argument("--model", default="tiny")
    h.add_argument("--workload", default="synthetic:num_requests=200,prompt=uniform(16,256),output=uniform(8,128),arrival=poisson(20),seed=1")
    h.add_argument("--repeat", type=int, default=3, help="runs of each way; the table shows medians (default: 3)")
    p.add_argument("--out", type=Path, default=None, help="folder for the result directories (default: results/load-<what>-<UTC time>)")
    args = p.parse_args(argv)
    out = args.out or default_out_dir(f"load-{args.what}")
    if args.what == "ceiling":
        short_runs = ceiling(out, [float(r) for r in args.rates.split(",")], args.seconds, output_tokens=4,
                             pin=args.pin, repeat=args.repeat)
        long_runs = ceiling(out, [float(r) for r in args.token_rates.split(",")], args.seconds,
                            output_tokens=args.long_output, pin=args.pin, repeat=args.repeat)
        short, long = median_rows(short_runs, "offered_req_per_s"), median_rows(long_runs, "offered_req_per_s")
        print("## short outputs (4 tokens): requests/s\n\n" + _table(short))
        print(f"\n## long outputs ({args.long_output} tokens): streamed tokens/s\n\n" + _table(long))
        for name, points in (("requests/s", short), ("streamed tokens/s", long)):
            best = best_under_target(points)
            value = "none" if best is None else (f"{best['achieved_req_per_s']:.0f} req/s" if name == "requests/s"
                                                 else f"{best['output_tok_per_s']:.0f} tok/s")
            print(f"\nceiling ({name}, p99 send lag < {LAG_TARGET_MS:g} ms): {value}")
        (out / "ceiling.json").write_text(json.dumps({"short": short_runs, "long": long_runs}, indent=1))
    else:
        rows = http_vs_inprocess(out, args.engine, args.model, args.workload, repeat=args.repeat)
        print(_table(rows))
        (out / "http_vs_inprocess.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
