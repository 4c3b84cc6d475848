"""The one entry point the harness calls: a spec in, a Workload of Requests out.

Steps, the same for every source: lengths (and trace times) -> fit to the model's context ->
prompt token ids -> arrival times. Lengths, arrivals, token ids and the shared prefix each
draw from their own random stream of the seed, so changing the arrival rate (a sweep) keeps
exactly the same prompts, and changing a length keeps the same arrival times.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from engines.request import Request
from workloads.anchor import anchor_a_requests
from workloads.arrivals import Closed, TraceTimes, parse_arrival
from workloads.context_fit import fit_to_context
from workloads.distributions import parse_distribution
from workloads.draft import Draft
from workloads.errors import WorkloadError
from workloads.parse import parse_spec
from workloads.spec import TRACE_SOURCES, WorkloadSpec
from workloads.synthetic import draft_empirical, draft_synthetic
from workloads.tokens import block_prompts, check_vocab, random_prompts, share_prefix
from workloads.traces.azure import load_azure
from workloads.traces.burstgpt import load_burstgpt
from workloads.traces.generic import load_generic
from workloads.traces.mooncake import load_mooncake
from workloads.traces.select import ReplayOptions
from workloads.workload import Workload

DATA_DIR = Path(__file__).parent / "data"
_LENGTHS, _ARRIVALS, _TOKENS, _PREFIX = 1, 2, 3, 4  # random stream of each purpose


def _stream(seed: int, purpose: int) -> np.random.Generator:
    return np.random.default_rng([seed, purpose])


def build_workload(
    spec: str | Path | dict | WorkloadSpec,
    *,
    vocab_size: int,
    max_model_len: int,
    seed: int | None = None,
) -> Workload:
    """Build the requests of `spec` for a model with this vocabulary and context length.

    seed, when given, replaces the spec's seed. Raises WorkloadError naming the problem.
    """
    spec = parse_spec(spec)
    if seed is not None:
        spec = replace(spec, seed=seed).resolved()
    if vocab_size < 1 or max_model_len < 2:
        raise WorkloadError(
            f"model limits vocab_size={vocab_size}, max_model_len={max_model_len}: expected "
            "vocab_size >= 1 and max_model_len >= 2"
        )
    notes: list[str] = []
    if spec.source == "anchor-a":
        made = anchor_a_requests(vocab_size, max_model_len)
        ids = [i for i, _, _ in made]
        prompts = [p for _, p, _ in made]
        outputs = [o for _, _, o in made]
        trace_times = None
    else:
        check_vocab(spec.vocab_low, vocab_size)
        draft = fit_to_context(_draft(spec, max_model_len), max_model_len, spec.fit_context)
        notes += draft.notes
        ids = [r.id for r in draft.requests]
        outputs = [r.output_len for r in draft.requests]
        prompts = _prompts(draft, spec, vocab_size, notes)
        trace_times = [r.arrival_s for r in draft.requests] if draft.has_times else None

    arrival = parse_arrival(spec.arrival)
    if isinstance(arrival, TraceTimes):
        times = trace_times
    else:
        times = arrival.times(_stream(spec.seed, _ARRIVALS), len(ids)).tolist()
        if spec.source in TRACE_SOURCES and trace_times is not None:
            notes.append(f"trace timestamps replaced by arrival={arrival.describe()}")
    requests = [
        Request(id=i, prompt_ids=tuple(int(t) for t in p), max_new_tokens=int(o), arrival_s=float(t))
        for i, p, o, t in zip(ids, prompts, outputs, times)
    ]
    for r in requests:  # every source must hand the engines servable requests
        r.validate(vocab_size, max_model_len)
    return Workload(
        name=spec.name,
        requests=requests,
        mode=arrival.mode,
        concurrency=arrival.concurrency if isinstance(arrival, Closed) else None,
        spec=spec.to_dict(),
        notes=notes,
    )


def resolve_data_path(path: str) -> Path:
    """A file as given (absolute, or relative to the working directory), else a file shipped
    in workloads/data/ (the presets' traces)."""
    given = Path(path).expanduser()
    for candidate in ([given] if given.is_absolute() else [given, DATA_DIR / given]):
        if candidate.is_file():
            return candidate
    tried = str(given) if given.is_absolute() else f"{Path.cwd() / given} and {DATA_DIR / given}"
    raise WorkloadError(f"key 'path': file {path!r} not found (looked at {tried})")


def _draft(spec: WorkloadSpec, max_model_len: int) -> Draft:
    n = spec.num_requests
    if spec.source == "synthetic":
        prompt = parse_distribution(spec.prompt, "prompt")
        output = parse_distribution(spec.output, "output")
        return draft_synthetic(n, prompt, output, _stream(spec.seed, _LENGTHS))
    path = resolve_data_path(spec.path)
    if spec.source == "empirical":
        return draft_empirical(
            n, path, spec.prompt_column, spec.output_column, _stream(spec.seed, _LENGTHS),
            max_model_len=max_model_len, drop_too_long=spec.fit_context == "drop",
        )
    opts = ReplayOptions(
        limit=spec.limit, start_s=spec.start_s, end_s=spec.end_s, speedup=spec.speedup,
        prompt_scale=spec.prompt_scale, output_scale=spec.output_scale,
    )
    if spec.source == "azure-trace":
        return load_azure(path, opts)
    if spec.source == "burstgpt-trace":
        return load_burstgpt(path, opts)
    if spec.source == "mooncake-trace":
        return load_mooncake(path, opts)
    return load_generic(
        path, opts, prompt_column=spec.prompt_column, output_column=spec.output_column,
        arrival_column=spec.arrival_column, time_unit=spec.time_unit,
    )


def _prompts(draft: Draft, spec: WorkloadSpec, vocab_size: int, notes: list[str]) -> list[np.ndarray]:
    lengths = [r.prompt_len for r in draft.requests]
    if draft.block_tokens is not None:
        hash_ids = [r.hash_ids for r in draft.requests]
        return block_prompts(hash_ids, lengths, draft.block_tokens, spec.seed, spec.vocab_low, vocab_size)
    prompts = random_prompts(lengths, _stream(spec.seed, _TOKENS), spec.vocab_low, vocab_size)
    if spec.prefix_fraction > 0:
        prompts, note = share_prefix(
            prompts, spec.prefix_fraction, spec.prefix_tokens, _stream(spec.seed, _PREFIX),
            spec.vocab_low, vocab_size,
        )
        notes.append(note)
    return prompts
