"""The summary tables: request outcomes, throughput, latency percentiles, engine and device."""

from __future__ import annotations

from reports.html import Html, fmt_bytes, fmt_num, fmt_pct, join, note, table, tag
from reports.page import Section
from reports.runs import RunView

STATUSES = ("ok", "error", "timeout", "cancelled", "rejected")
LATENCIES = (("ttft_ms", "TTFT"), ("tpot_ms", "TPOT"), ("itl_ms", "ITL"), ("e2e_ms", "E2E"))
PERCENTILES = ("p50", "p90", "p99")
DEVICE_SOURCES = {
    "nvml": "NVML utilization.gpu: the share of each sample period in which any kernel ran on "
    "the GPU. It is not SM occupancy: one small kernel running all the time reads 100 %.",
    "cpu": "no GPU: system-wide CPU busy percent (psutil), all cores together.",
}


def _run_status(view: RunView) -> str:
    return str((view.manifest.get("run") or {}).get("status") or "complete")


def _row_class(view: RunView) -> str | None:
    return "bad" if view.not_ok or _run_status(view) != "complete" else None


def warnings(views: list[RunView]) -> list[str]:
    """What makes a run less than clean, one line each."""
    lines = []
    for v in views:
        status = _run_status(v)
        if status != "complete":
            error = (v.manifest.get("run") or {}).get("error")
            lines.append(f"{v.name}: the run is {status}" + (f" ({error})" if error else ""))
        if v.not_ok:
            failed = ", ".join(f"{v.count(s)} {s}" for s in STATUSES[1:] if v.count(s))
            lines.append(f"{v.name}: {failed} of {v.count('total') or '?'} requests did not finish ok")
        load = v.block("load") or {}
        if load.get("generator_limited"):
            reasons = "; ".join(map(str, load.get("warnings") or [])) or "the client was the bottleneck"
            lines.append(f"{v.name}: the load generator, not the server, was the limit: {reasons}")
    return lines


def _throughput_table(views: list[RunView]) -> Html:
    headers = ["run", "workload", *STATUSES, "duration s", "output tok/s", "total tok/s",
               "requests/s", "goodput req/s", "SLO attainment", "concurrency mean", "peak"]
    rows = [
        [v.name, v.workload, *(fmt_num(v.count(s)) for s in STATUSES),
         fmt_num(v.number("duration_s")), fmt_num(v.number("output_tok_per_s")),
         fmt_num(v.number("total_tok_per_s")), fmt_num(v.number("request_per_s")),
         fmt_num(v.number("goodput_req_per_s")), fmt_pct(v.number("slo_attainment")),
         fmt_num(v.number("concurrency_mean")), fmt_num(v.number("concurrency_peak"))]
        for v in views
    ]
    return table(headers, rows, row_classes=[_row_class(v) for v in views])


def _latency_table(views: list[RunView]) -> Html:
    headers = ["run", "ok", "not ok"] + [p for _ in LATENCIES for p in PERCENTILES]
    groups = [("", 1), ("requests", 2)] + [(f"{title} ms", len(PERCENTILES)) for _, title in LATENCIES]
    rows = [
        [v.name, fmt_num(v.count("ok")), fmt_num(v.not_ok)]
        + [fmt_num(v.number(key, p)) for key, _ in LATENCIES for p in PERCENTILES]
        for v in views
    ]
    return table(headers, rows, group_headers=groups, row_classes=[_row_class(v) for v in views])


def _engine_table(views: list[RunView]) -> Html:
    headers = ["run", "padding efficiency", "preemptions", "recomputed tok", "KV utilisation mean",
               "KV peak tok", "KV capacity tok", "CUDA-graph / eager steps", "roofline efficiency", "device util %",
               "SM clock MHz", "power-capped %", "device source", "memory peak", "energy J/output tok"]
    rows = []
    for v in views:
        device = v.block("device") or {}
        rows.append([
            v.name, fmt_pct(v.number("engine", "padding_efficiency")),
            fmt_num(v.number("engine", "preemptions")), fmt_num(v.number("engine", "recomputed_tokens")),
            fmt_pct(v.number("engine", "kv_utilization_mean")), fmt_num(v.number("engine", "kv_tokens_peak")),
            fmt_num(v.number("engine", "kv_tokens_capacity")), _graph_steps(v),
            fmt_pct(v.number("roofline", "efficiency")),
            fmt_num(v.number("device", "utilization_pct_mean")), fmt_num(v.number("device", "sm_clock_mhz_mean")),
            fmt_num(v.number("device", "power_capped_pct")), device.get("source") or "–",
            fmt_bytes(v.number("device", "memory_used_bytes_peak")),
            fmt_num(v.number("device", "energy_j_per_output_tok")),
        ])
    return table(headers, rows)


def _graph_steps(v: RunView) -> str:
    graphed, eager = v.number("engine", "cuda_graph_steps"), v.number("engine", "eager_steps")
    return "–" if graphed is None or eager is None else f"{fmt_num(graphed)} / {fmt_num(eager)}"


def _load_table(views: list[RunView]) -> Html:
    """bench load's fidelity check: did the client deliver the load it was asked for?"""
    headers = ["run", "offered req/s", "achieved req/s", "achieved / offered", "send lag p50 ms",
               "send lag p99 ms", "send lag max ms", "client CPU busy max %", "generator limited"]
    rows = [
        [v.name, fmt_num(v.number("load", "offered_rate_req_per_s")),
         fmt_num(v.number("load", "achieved_rate_req_per_s")), fmt_pct(v.number("load", "achieved_over_offered")),
         fmt_num(v.number("load", "send_lag_ms", "p50")), fmt_num(v.number("load", "send_lag_ms", "p99")),
         fmt_num(v.number("load", "send_lag_ms", "max")), fmt_num(v.number("load", "client_cpu_busy_pct_max")),
         "yes" if (v.block("load") or {}).get("generator_limited") else "no"]
        for v in views if v.block("load") is not None
    ]
    classes = ["bad" if (v.block("load") or {}).get("generator_limited") else None
               for v in views if v.block("load") is not None]
    return table(headers, rows, row_classes=classes)


def _notes(views: list[RunView]) -> list[Html]:
    notes = []
    by_source: dict[str, list[str]] = {}
    for v in views:
        source = (v.block("device") or {}).get("source")
        if source:
            by_source.setdefault(str(source), []).append(v.name)
    for source, names in sorted(by_source.items()):
        meaning = DEVICE_SOURCES.get(source, "an unknown sampler source")
        notes.append(note(f"Device utilisation of {', '.join(names)} is from source “{source}”: {meaning}"))
    slos = {v.name: {k: x for k, x in (v.block("slo") or {}).items() if x is not None} for v in views}
    if not any(slos.values()):
        notes.append(note("No SLO was given, so goodput and SLO attainment are not measured (–)."))
    for v in views:
        slo = slos[v.name]
        if slo:
            limits = ", ".join(f"{k} ≤ {x}" for k, x in sorted(slo.items()))
            notes.append(note(f"{v.name}: goodput counts ok requests meeting every SLO ({limits})."))
        unevaluable = v.number("tpot_not_evaluable")
        if unevaluable:
            notes.append(note(f"{v.name}: {fmt_num(unevaluable)} ok requests had fewer than 2 output "
                              "tokens; TPOT leaves them out."))
    return notes


def section(views: list[RunView]) -> Section:
    out = Section("summary", "Summary")
    out.add(note(
        "Latencies are over ok requests only; throughputs divide by W, the time from the first "
        "send to the last token of an ok request. TTFT: send to first token. TPOT: (last − first "
        "token) / (N − 1) per request. ITL: every gap between consecutive tokens, pooled. E2E: "
        "send to last token. Rows in red had failed or unfinished requests: their latencies "
        "describe only the requests that finished."))
    problems = warnings(views)
    if problems:
        out.add(tag("div", join(tag("p", line) for line in problems), class_="warn"))
    out.add(tag("h3", "Requests and throughput"))
    out.add(tag("div", _throughput_table(views), class_="scroll"))
    out.add(tag("h3", "Latency percentiles"))
    out.add(tag("div", _latency_table(views), class_="scroll"))
    out.add(tag("h3", "Engine and device"))
    out.add(tag("div", _engine_table(views), class_="scroll"))
    if any(v.block("load") is not None for v in views):
        out.add(tag("h3", "Load generator fidelity (bench load)"))
        out.add(note("Send lag: actual send − scheduled arrival. A lagging or saturated client offered "
                     "the server a gentler load than planned: those numbers describe the client too."))
        out.add(tag("div", _load_table(views), class_="scroll"))
    for line in _notes(views):
        out.add(line)
    return out
