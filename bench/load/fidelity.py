"""Did the load generator deliver the load it was asked for? (summary.json "load" block)

A load test measures the server only while the client keeps up. Three checks:
- achieved vs offered arrival rate: requests per second actually sent, against what the
  schedule asked for ((n - 1) / (last - first arrival); None for a burst or closed loop);
- send lag: actual send - scheduled arrival, per request (open loop only); a lag that grows
  means the generator fell behind, and the server saw a gentler load than the one planned;
- client CPU: each generator process runs one gevent loop on one core, so a process near
  100% busy could go no faster. Busy = CPU - the share of time spent spin-waiting for a
  send time (that spin burns a core but yields to any real work).

`generator_limited` is true, with a warning naming each cause, when p99 send lag exceeds
`lag_limit_ms` or a process was busier than `cpu_limit_pct`, or a worker's results are
missing. Then the numbers describe the client as much as the server.
"""

from __future__ import annotations

from bench.load.plan import LoadPlan
from bench.metrics.distribution import distribution

LAG_LIMIT_MS = 5.0
CPU_LIMIT_PCT = 90.0


def _rate(times_ns: list[int]) -> float | None:
    if len(times_ns) < 2:
        return None
    span = (max(times_ns) - min(times_ns)) / 1e9
    return (len(times_ns) - 1) / span if span > 0 else None


def load_fidelity(
    plan: LoadPlan,
    records: list[dict],
    processes: list[dict],
    *,
    not_sent: int = 0,
    lag_limit_ms: float = LAG_LIMIT_MS,
    cpu_limit_pct: float = CPU_LIMIT_PCT,
) -> dict:
    sent = [r for r in records if r.get("send_ns") is not None]
    offered = plan.offered_rate
    achieved = _rate([r["send_ns"] for r in sent])
    lag = None
    if plan.mode == "open" and sent:
        lag = distribution([(r["send_ns"] - r["arrival_ns"]) / 1e6 for r in sent])
    warnings = []
    if lag is not None and lag["p99"] > lag_limit_ms:
        warnings.append(
            f"p99 send lag {lag['p99']:.2f} ms > {lag_limit_ms:g} ms: requests went out later than "
            f"scheduled (max {lag['max']:.1f} ms); the load generator was the limit"
        )
    busy = [p.get("busy_pct") for p in processes if p.get("busy_pct") is not None]
    for p in processes:
        if p.get("missing"):
            warnings.append(f"load generator {p['role']} sent no results: its requests are missing")
        elif (p.get("busy_pct") or 0) > cpu_limit_pct:
            warnings.append(
                f"load generator {p['role']} was {p['busy_pct']:.0f}% busy (> {cpu_limit_pct:g}% of its "
                f"one core): add workers (--workers N)"
            )
    return {
        "mode": plan.mode,
        "users": plan.users,
        "processes": len(processes),
        "requests_planned": len(plan.requests),
        "requests_sent": len(sent),
        "requests_not_sent": not_sent,
        "offered_rate_req_per_s": offered,
        "achieved_rate_req_per_s": achieved,
        "achieved_over_offered": achieved / offered if achieved and offered else None,
        "send_lag_ms": lag,
        "client_cpu_busy_pct_max": max(busy) if busy else None,
        "client_processes": processes,
        "lag_limit_ms": lag_limit_ms,
        "cpu_limit_pct": cpu_limit_pct,
        "generator_limited": bool(warnings),
        "warnings": warnings,
        "notes": list(plan.notes),
    }
