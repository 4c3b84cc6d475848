"""Options shared by the commands that run engines (run, compare, sweep), and their parsing
into bench.session.RunOptions. Bad values fail in argparse with exit code 2."""

from __future__ import annotations

import argparse
import json
import math

from bench.engine_spec import parse_bytes, parse_key_values
from engines.request import ConfigError

# dedicated flags -> engine option names (engines.core.options.EngineOptions)
ENGINE_FLAGS = {
    "max_batch": "max_batch",
    "token_budget": "token_budget",
    "block_size": "block_size",
    "kv_memory": "kv_memory",
    "max_model_len": "max_model_len",
    "prefix_caching": "prefix_caching",
}


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must be >= 0")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"{text} must be a positive number")
    return value


def byte_size(text: str) -> int:
    try:
        return parse_bytes(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e))


def ceilings_pair(text: str) -> tuple[float, float]:
    """"4265,799" (GB/s, TFLOP/s) -> (bytes/s, FLOP/s)."""
    try:
        bw, tflops = (float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected GBPS,TFLOPS such as 4265,799, got {text!r}")
    if not (bw > 0 and tflops > 0):
        raise argparse.ArgumentTypeError(f"both ceilings must be positive, got {text!r}")
    return bw * 1e9, tflops * 1e12


def json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not valid JSON ({e})")
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("expected a JSON object")
    return value


def add_model_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    g.add_argument("--model", default="tiny", help="model preset (see `bench list models`) or a local checkpoint directory (default: tiny)")
    g.add_argument("--device", help="e.g. cuda, cuda:1, cpu (default: the engine's choice)")
    g.add_argument("--dtype", help="e.g. bfloat16, float16, float32 (default: the engine's choice)")
    g.add_argument("--seed", type=int, default=0, help="seed of the engine: random weights, sampling (default: 0)")


def add_engine_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("engine options (passed to every engine; an engine spec's own options win)")
    g.add_argument("--max-batch", type=positive_int, help="most requests in one batch")
    g.add_argument("--token-budget", type=positive_int, help="most tokens computed in one step (chunked prefill)")
    g.add_argument("--block-size", type=positive_int, help="KV block size in tokens (paged)")
    g.add_argument("--kv-memory", type=byte_size, help="KV cache size, bytes or with a unit: 2GiB, 512MB")
    g.add_argument("--max-model-len", type=positive_int, help="longest sequence (prompt + output) served")
    g.add_argument("--prefix-caching", action=argparse.BooleanOptionalAction, default=None, help="reuse KV of shared prompt prefixes (paged)")
    g.add_argument("--engine-opt", action="append", default=[], metavar="KEY=VALUE", help="any other engine option (repeatable); values parse as bool/int/float/str")
    g.add_argument("--engine-options-json", type=json_object, default=None, help=argparse.SUPPRESS)


def add_run_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("measurement")
    g.add_argument("--workload-seed", type=int, help="override the workload spec's seed (default: the spec's own)")
    g.add_argument("--slo-ttft-ms", type=positive_float, help="TTFT target for goodput and SLO attainment")
    g.add_argument("--slo-tpot-ms", type=positive_float, help="TPOT target")
    g.add_argument("--slo-e2e-ms", type=positive_float, help="end-to-end latency target")
    g.add_argument("--timeout-s", type=positive_float, help="per-request timeout from its send; expired requests are aborted and counted as timeout")
    g.add_argument("--warmup-requests", type=non_negative_int, default=2, help="short requests run and drained before the measured run (default: 2)")
    g.add_argument("--sampler-interval-s", type=positive_float, default=0.2, help="device sampling period (default: 0.2; NVML itself updates every 1/6 to 1 s)")
    g.add_argument("--no-token-ids", dest="keep_token_ids", action="store_false", help="do not store output token ids (no consistency check)")
    g.add_argument("--no-roofline", dest="roofline", action="store_false", help="skip the roofline bound (it measures device ceilings once and caches them)")
    g.add_argument("--ceilings", type=ceilings_pair, default=None, metavar="GBPS,TFLOPS", help="the device's memory bandwidth (GB/s, bytes read + written) and matrix rate (TFLOP/s) for the roofline, instead of measuring them, e.g. 4265,799")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def add_all(p: argparse.ArgumentParser) -> None:
    add_model_options(p)
    add_engine_options(p)
    add_run_options(p)


def engine_options_from_args(args: argparse.Namespace) -> dict:
    options = dict(args.engine_options_json or {})
    for flag, name in ENGINE_FLAGS.items():
        value = getattr(args, flag)
        if value is not None:
            options[name] = value
    extra = parse_key_values(args.engine_opt, "--engine-opt")
    twice = sorted(set(extra) & set(options))
    if twice:
        raise ConfigError(f"--engine-opt {twice[0]}=... repeats an option already set by its own flag")
    return {**options, **extra}


def run_options_from_args(args: argparse.Namespace, engine_options: dict | None = None):
    """-> bench.session.RunOptions (imported here: `bench list` need not load pandas).
    engine_options: given, they replace those read from the engine-option flags."""
    from bench.metrics import SLO
    from bench.session import RunOptions

    slo = SLO(ttft_ms=args.slo_ttft_ms, tpot_ms=args.slo_tpot_ms, e2e_ms=args.slo_e2e_ms)
    return RunOptions(
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        workload_seed=args.workload_seed,
        engine_options=engine_options_from_args(args) if engine_options is None else engine_options,
        slo=slo if slo.given else None,
        timeout_s=args.timeout_s,
        keep_token_ids=args.keep_token_ids,
        progress=args.progress,
        warmup_requests=args.warmup_requests,
        roofline=args.roofline,
        sampler_interval_s=args.sampler_interval_s,
        ceilings=args.ceilings,
    )


def split_specs(values: list[str]) -> list[str]:
    """Engine or workload specs from repeated and/or comma-separated arguments.

    Specs carry their own comma-separated KEY=VALUE options, so a comma piece that is a bare
    KEY=VALUE (no ':' before its '=') continues the spec before it:
    'naive,paged:block_size=32,prefix_caching=true' -> ['naive', 'paged:block_size=32,prefix_caching=true'].
    Commas inside parentheses never split: 'synthetic:prompt=uniform(16,256)' stays whole.
    """
    specs: list[str] = []
    for value in values:
        for piece in _split_outside_parens(value):
            if not piece:
                continue
            key, eq, _ = piece.partition("=")
            if specs and eq and ":" not in key and ("(" not in key):
                specs[-1] += "," + piece
            else:
                specs.append(piece)
    return specs


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return parts
