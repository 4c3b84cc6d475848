"""WorkloadSpec: everything that defines a workload, as one plain, JSON-serialisable dataclass.

A spec names a `source` (how lengths and times are made) plus that source's keys; keys left
None take the source's default when the spec is resolved. A key that does not apply to the
source is an error, not silently ignored. The resolved spec goes into Workload.spec and the
result manifest, so a run records every value it was built with.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import asdict, dataclass, fields, replace

from workloads.arrivals import Closed, Constant, Gamma, Offline, Poisson, TraceTimes, parse_arrival
from workloads.context_fit import POLICIES
from workloads.distributions import parse_distribution
from workloads.errors import WorkloadError
from workloads.traces.generic import TIME_UNITS
from workloads.traces.mooncake import block_tokens

TRACE_SOURCES = ("azure-trace", "burstgpt-trace", "mooncake-trace", "generic-trace")
SOURCES = {
    "synthetic": "prompt and output lengths from two length distributions",
    "empirical": "(prompt, output) length pairs sampled from a lengths file (CSV/JSONL)",
    "anchor-a": "the fixed cross-tool workload of METRICS.md (takes no options)",
    "azure-trace": "Azure LLM inference trace 2023 CSV (TIMESTAMP, ContextTokens, GeneratedTokens)",
    "burstgpt-trace": "BurstGPT CSV (Timestamp, Request tokens, Response tokens)",
    "mooncake-trace": "Mooncake JSONL (timestamp ms, input_length, output_length, hash_ids)",
    "generic-trace": "any CSV/JSONL with named prompt, output and optional arrival columns",
}

_COMMON = {"source", "preset", "name", "seed", "arrival"}
_RANDOM_IDS = {"vocab_low", "prefix_fraction", "prefix_tokens", "fit_context"}
_REPLAY = {"path", "limit", "start_s", "end_s", "speedup", "prompt_scale", "output_scale"}
SOURCE_KEYS: dict[str, set[str]] = {
    "synthetic": _COMMON | _RANDOM_IDS | {"num_requests", "prompt", "output"},
    "empirical": _COMMON | _RANDOM_IDS | {"num_requests", "path", "prompt_column", "output_column"},
    "anchor-a": _COMMON,
    "azure-trace": _COMMON | _RANDOM_IDS | _REPLAY,
    "burstgpt-trace": _COMMON | _RANDOM_IDS | _REPLAY,
    # Mooncake prompts come from hash-id blocks: no random prompts, no extra shared prefix.
    "mooncake-trace": _COMMON | _REPLAY | {"vocab_low", "fit_context"},
    "generic-trace": _COMMON | _RANDOM_IDS | _REPLAY
    | {"prompt_column", "output_column", "arrival_column", "time_unit"},
}

# Defaults; keys absent here default to None (limit, end_s, arrival_column: "none").
DEFAULTS = {
    "seed": 0,
    "fit_context": "clip",
    "vocab_low": 3,
    "prefix_fraction": 0.0,
    "prefix_tokens": 0,
    "num_requests": 64,
    "prompt": "uniform(16,256)",
    "output": "uniform(8,128)",
    "start_s": 0.0,
    "speedup": 1.0,
    "prompt_scale": 1.0,
    "output_scale": 1.0,
    "time_unit": "s",
}
SOURCE_DEFAULTS = {"empirical": {"prompt_column": "num_prefill_tokens", "output_column": "num_decode_tokens"}}

_NAME = re.compile(r"^[\w.+-]+$")
INT_KEYS = {"seed", "num_requests", "limit", "vocab_low", "prefix_tokens"}
FLOAT_KEYS = {"start_s", "end_s", "speedup", "prompt_scale", "output_scale", "prefix_fraction"}


def coerce(key: str, value, origin: str):
    """A value from a command line (always a string) or a TOML/YAML file, as the key's type."""
    if value is None:
        return None
    if key not in INT_KEYS and key not in FLOAT_KEYS:
        if not isinstance(value, str):
            raise WorkloadError(f"{origin}: key {key!r}: got {value!r}, expected a string")
        return value
    bad = WorkloadError(
        f"{origin}: key {key!r}: got {value!r}, expected {'an integer' if key in INT_KEYS else 'a number'}"
    )
    if isinstance(value, bool):  # TOML/YAML true is an int to Python, never a count
        raise bad
    try:
        if key in INT_KEYS:
            number = int(value) if isinstance(value, str) else value
            if not isinstance(number, int):
                raise ValueError
        else:
            number = float(value)
    except (TypeError, ValueError):
        raise bad from None
    if key in FLOAT_KEYS and not math.isfinite(number):
        raise bad
    return number


@dataclass(frozen=True)
class WorkloadSpec:
    source: str = "synthetic"
    preset: str | None = None  # the preset it started from, for the record
    name: str | None = None  # default: the preset's name, else the source's
    seed: int | None = None  # lengths, arrivals and token ids each draw from their own stream of it
    arrival: str | None = None  # see workloads.arrivals; default offline ("trace" for traces)
    fit_context: str | None = None  # clip | drop | error, see workloads.context_fit
    # synthetic / empirical
    num_requests: int | None = None
    prompt: str | None = None  # a length distribution, see workloads.distributions
    output: str | None = None
    # files: lengths files and traces
    path: str | None = None
    prompt_column: str | None = None
    output_column: str | None = None
    arrival_column: str | None = None
    time_unit: str | None = None  # "s" or "ms", for arrival_column
    # trace replay
    limit: int | None = None  # first N requests (after the time window)
    start_s: float | None = None  # window start, seconds after the trace's first request
    end_s: float | None = None  # window end (exclusive)
    speedup: float | None = None  # arrival times divided by this: 2 = twice as fast
    prompt_scale: float | None = None  # lengths multiplied by these, rounded up
    output_scale: float | None = None
    # prompt token ids
    vocab_low: int | None = None  # ids drawn from [vocab_low, vocab_size)
    prefix_fraction: float | None = None  # this fraction of requests share one prefix ...
    prefix_tokens: int | None = None  # ... of this many tokens

    def resolved(self, origin: str = "workload spec") -> WorkloadSpec:
        """Fill the source's defaults and validate; raise WorkloadError naming the bad key."""
        spec = replace(self, **{f.name: coerce(f.name, getattr(self, f.name), origin) for f in fields(self)})
        if spec.source not in SOURCES:
            raise WorkloadError(
                f"{origin}: key 'source': unknown source {spec.source!r}; known: {', '.join(SOURCES)}"
            )
        allowed = SOURCE_KEYS[spec.source]
        for f in fields(spec):
            if getattr(spec, f.name) is not None and f.name not in allowed:
                raise WorkloadError(
                    f"{origin}: key {f.name!r} does not apply to source {spec.source!r} "
                    f"(its keys: {', '.join(sorted(allowed - {'source'}))})"
                )
        defaults = {**DEFAULTS, **SOURCE_DEFAULTS.get(spec.source, {})}
        spec = replace(spec, **{k: defaults[k] for k in allowed if getattr(spec, k) is None and k in defaults})
        if spec.name is None:
            spec = replace(spec, name=spec.preset or spec.source)
        if spec.arrival is None:
            has_times = spec.source in TRACE_SOURCES and (
                spec.source != "generic-trace" or spec.arrival_column is not None
            )
            spec = replace(spec, arrival="trace" if has_times else "offline")
        _validate(spec, origin)
        return spec

    def to_dict(self) -> dict:
        """The keys that apply to this source (None: unset, e.g. no limit), JSON-serialisable."""
        allowed = SOURCE_KEYS.get(self.source, set())
        return {k: v for k, v in asdict(self).items() if k in allowed}


def _check(ok: bool, origin: str, key: str, value, expected: str) -> None:
    if not ok:
        raise WorkloadError(f"{origin}: key {key!r}: got {value!r}, expected {expected}")


def _validate(s: WorkloadSpec, origin: str) -> None:
    # the name becomes part of result directory names
    _check(bool(_NAME.match(s.name)), origin, "name", s.name, "letters, digits and . _ + - only")
    _check(0 <= s.seed < 2**63, origin, "seed", s.seed, "an integer in [0, 2**63)")
    arrival = parse_arrival(s.arrival, f"{origin}: key 'arrival'")
    if isinstance(arrival, TraceTimes):
        if s.source not in TRACE_SOURCES or (s.source == "generic-trace" and not s.arrival_column):
            raise WorkloadError(
                f"{origin}: key 'arrival': 'trace' replays a trace's timestamps, and source "
                f"{s.source!r} has none (generic-trace needs arrival_column); use an arrival "
                "process such as poisson(4)"
            )
    if s.fit_context is not None:
        _check(s.fit_context in POLICIES, origin, "fit_context", s.fit_context, f"one of {POLICIES}")
    if s.num_requests is not None:
        _check(s.num_requests >= 1, origin, "num_requests", s.num_requests, "an integer >= 1")
    for key in ("prompt", "output"):
        if getattr(s, key) is not None:
            parse_distribution(getattr(s, key), f"{origin}: key {key!r}")
    if s.source == "empirical" or s.source in TRACE_SOURCES:
        _check(bool(s.path), origin, "path", s.path, f"the path of the file to read (source {s.source!r})")
    if s.source == "generic-trace":
        for key in ("prompt_column", "output_column"):
            _check(bool(getattr(s, key)), origin, key, getattr(s, key), "a column name")
        _check(s.time_unit in TIME_UNITS, origin, "time_unit", s.time_unit, f"one of {list(TIME_UNITS)}")
    if s.source in TRACE_SOURCES:
        _validate_replay(s, origin, arrival)
    if s.prefix_fraction is not None:
        _check(0.0 <= s.prefix_fraction <= 1.0, origin, "prefix_fraction", s.prefix_fraction, "a fraction in [0, 1]")
        _check(s.prefix_tokens >= 0, origin, "prefix_tokens", s.prefix_tokens, "an integer >= 0")
        if (s.prefix_fraction > 0) != (s.prefix_tokens > 0):
            raise WorkloadError(
                f"{origin}: keys 'prefix_fraction' ({s.prefix_fraction}) and 'prefix_tokens' "
                f"({s.prefix_tokens}): a shared prefix needs both > 0, or neither"
            )
    if s.vocab_low is not None:
        _check(s.vocab_low >= 0, origin, "vocab_low", s.vocab_low, "an integer >= 0")


def _validate_replay(s: WorkloadSpec, origin: str, arrival) -> None:
    if s.limit is not None:
        _check(s.limit >= 1, origin, "limit", s.limit, "an integer >= 1 (or unset: no limit)")
    _check(s.start_s >= 0, origin, "start_s", s.start_s, "seconds >= 0 after the first request")
    if s.end_s is not None:
        _check(s.end_s > s.start_s, origin, "end_s", s.end_s, f"seconds > start_s={s.start_s:g}")
    windowed = s.start_s > 0 or s.end_s is not None
    if windowed and s.source == "generic-trace" and not s.arrival_column:
        raise WorkloadError(f"{origin}: keys 'start_s'/'end_s': a time window needs arrival_column")
    _check(s.speedup > 0, origin, "speedup", s.speedup, "a factor > 0 (2 = twice as fast)")
    if s.speedup != 1.0 and not isinstance(arrival, TraceTimes):
        raise WorkloadError(
            f"{origin}: key 'speedup': rescales the trace's own arrival times, but arrival is "
            f"{s.arrival!r}; set that process's rate instead"
        )
    for key in ("prompt_scale", "output_scale"):
        _check(getattr(s, key) > 0, origin, key, getattr(s, key), "a factor > 0")
    if s.source == "mooncake-trace":
        try:
            block_tokens(s.prompt_scale)
        except WorkloadError as e:
            raise WorkloadError(f"{origin}: key 'prompt_scale': {e}") from None


def closest_key(key: str) -> str:
    names = [f.name for f in fields(WorkloadSpec)]
    match = difflib.get_close_matches(key, names, n=1)
    return f"; did you mean {match[0]!r}?" if match else f"; known keys: {', '.join(names)}"


def with_rate(spec: WorkloadSpec, rate: float) -> WorkloadSpec:
    """The same workload at another request rate, keeping the arrival family (for sweeps):
    poisson and offline -> poisson(rate), gamma(r,b) -> gamma(rate,b), constant -> constant(rate)."""
    spec = spec.resolved()
    arrival = parse_arrival(spec.arrival)
    if isinstance(arrival, (Poisson, Offline)):
        new = f"poisson({rate:g})"
    elif isinstance(arrival, Gamma):
        new = f"gamma({rate:g},{arrival.burstiness:g})"
    elif isinstance(arrival, Constant):
        new = f"constant({rate:g})"
    elif isinstance(arrival, Closed):
        raise WorkloadError(f"workload {spec.name!r} is closed-loop ({spec.arrival}): sweep its concurrency, not a rate")
    else:
        raise WorkloadError(
            f"workload {spec.name!r} replays trace timestamps: change its speedup, or set "
            "an arrival process (e.g. arrival=poisson(4)) to sweep a rate"
        )
    return replace(spec, arrival=new).resolved()


def with_concurrency(spec: WorkloadSpec, users: int) -> WorkloadSpec:
    """The same requests, sent by `users` closed-loop clients (for concurrency sweeps)."""
    spec = spec.resolved()
    # speedup rescales trace timestamps, which a closed loop does not use
    return replace(spec, arrival=f"closed({users})", speedup=None).resolved()
