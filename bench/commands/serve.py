"""`bench serve`: an engine behind an OpenAI-compatible HTTP API (bench.serve)."""

from __future__ import annotations

import argparse
import sys

from bench.commands.options import add_engine_options, add_model_options, engine_options_from_args, positive_int


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "serve",
        help="serve an engine over an OpenAI-compatible HTTP API",
        description="Serve one engine over HTTP: POST /v1/completions and /v1/chat/completions "
        "(streaming or not), GET /v1/models, /health and /metrics (Prometheus). Ctrl-C stops it.",
    )
    p.add_argument("--engine", default="paged", help="engine spec: NAME or NAME:KEY=VALUE,... (default: paged)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000; 0 picks a free one)")
    p.add_argument("--max-waiting", type=positive_int, default=256,
                   help="requests allowed to wait for their first token; more get 429 (default: 256)")
    p.add_argument("--retry-after-s", type=int, default=1, help="Retry-After of a 429 answer, seconds (default: 1)")
    p.add_argument("--served-model-name", help="the model id clients send and /v1/models lists (default: the model's name)")
    p.add_argument("--tokenizer", help="local directory with tokenizer files (default: the model directory when it has them, else bytes)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    add_model_options(p)
    add_engine_options(p)
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from bench.engine_spec import parse_engine_spec
    from bench.serve import ServeOptions, serve
    from engines.registry import create_engine

    spec = parse_engine_spec(args.engine)
    options = {**engine_options_from_args(args), **spec.options}
    placement = {k: v for k, v in (("device", args.device), ("dtype", args.dtype)) if v is not None}
    serve_options = ServeOptions(
        max_waiting=args.max_waiting,
        retry_after_s=args.retry_after_s,
        model_name=args.served_model_name,
        tokenizer=args.tokenizer,
    )
    serve_options.validate()
    engine = create_engine(spec.name, model=args.model, seed=args.seed, **placement, **options)
    try:
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"warning: listening on {args.host}: reachable from other machines, with no authentication",
                  file=sys.stderr)
        serve(engine, args.host, args.port, options=serve_options, log_level=args.log_level)
    finally:
        engine.close()
    return 0
