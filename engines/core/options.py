"""Engine options, with defaults that fit the device, validated when the engine is built.

The same options mean the same thing for every in-repo engine, so a comparison changes one
thing at a time: the batching strategy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch

from engines.request import ConfigError

CPU_DEFAULTS = dict(max_batch=32, token_budget=512, kv_memory=1 << 30)
GPU_DEFAULTS = dict(max_batch=256, token_budget=8192)
QUEUE_ORDERS = ("fcfs", "lof")
ADMISSIONS = ("on-demand", "reserve")
GPU_KV_SHARE = 0.7  # of the memory free after weights; the rest is for activations
DEFAULT_MAX_MODEL_LEN = 4096


@dataclass
class EngineOptions:
    """What a user may set. None means "the default for this device and model".

    max_batch: most sequences in one step (and rows of a padded batch).
    token_budget: most tokens computed in one step by continuous and paged (chunked prefill:
        longer prompts are split over steps). Must be >= max_batch.
    block_size: KV block size in tokens.
    kv_memory: bytes for the KV cache; kv_tokens: its size in tokens (wins over kv_memory).
    max_model_len: longest prompt + output a request may have; continuous and static reserve
        this much KV per running request.
    prefix_caching: paged only: share cached prompt blocks between requests.
    admission: paged only: "on-demand" admits a request while its prompt's blocks fit and
        preempts when the pool runs dry; "reserve" admits one only while every running
        request's prompt + max_new_tokens fits, so nothing is preempted.
    attention: "auto", "reference" (plain torch, any device), or a GPU kernel name.
    cuda_graphs: capture decode steps in CUDA graphs (GPU only).
    mixed_graph_tokens: with cuda_graphs, also capture steps that mix prompt chunks with
        decodes, up to this many tokens (in buckets of 64; 0: such steps run eagerly).
    async_scheduling: schedule and launch step t+1 before step t's tokens reach the host
        (the tokens stay on the device), so host work overlaps the GPU's.
    batch_invariant: matrix products and attention whose result for a token does not depend
        on what else is in the batch (fixed reduction order): engines then agree token for
        token in bf16 too, at some speed.
    step_timing: time each step on the device with CUDA events (StepStats.device_ns), for the
        report's phase by phase breakdown; off, the phases are timed from the host.
    queue_order: the order waiting requests are admitted in: "fcfs" (arrival) or "lof"
        (longest output first: largest max_new_tokens first, SGLang's schedule policy of
        that name). With everything queued at once, lof starts the longest requests first,
        so the run's last steps are not a few long requests decoding alone.
    """

    max_batch: int | None = None
    token_budget: int | None = None
    block_size: int = 16
    kv_memory: int | None = None
    kv_tokens: int | None = None
    max_model_len: int | None = None
    prefix_caching: bool = False
    attention: str = "auto"
    cuda_graphs: bool = True
    mixed_graph_tokens: int = 2048
    async_scheduling: bool = True
    batch_invariant: bool = False
    step_timing: bool = True
    queue_order: str = "fcfs"
    admission: str = "on-demand"

    @classmethod
    def from_kwargs(cls, engine: str, kwargs: dict) -> "EngineOptions":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise ConfigError(f"engine {engine!r}: unknown options {unknown}; known: {sorted(known)}")
        return cls(**kwargs)


@dataclass
class ResolvedOptions:
    """EngineOptions with every default filled in for one device and model."""

    max_batch: int
    token_budget: int
    block_size: int
    num_blocks: int
    max_model_len: int
    prefix_caching: bool
    attention: str
    cuda_graphs: bool
    kv_bytes_per_token: int
    async_scheduling: bool = True
    batch_invariant: bool = False
    mixed_graph_tokens: int = 0
    step_timing: bool = True
    queue_order: str = "fcfs"
    admission: str = "on-demand"

    @property
    def kv_tokens(self) -> int:
        return self.num_blocks * self.block_size

    def describe(self) -> dict:
        d = asdict(self)
        d["kv_tokens"] = self.kv_tokens
        d["kv_memory"] = self.kv_tokens * self.kv_bytes_per_token
        return d


def default_max_model_len(opts: EngineOptions, model_max_len: int) -> int:
    """The model's own limit, capped at DEFAULT_MAX_MODEL_LEN: engines that reserve KV per
    request for the longest allowed sequence would otherwise reserve 128k tokens each."""
    return opts.max_model_len or min(model_max_len, DEFAULT_MAX_MODEL_LEN)


def _positive(name: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"option {name} must be a positive integer, got {value!r}")


def resolve(
    opts: EngineOptions,
    *,
    model_max_len: int,
    kv_bytes_per_token: int,
    device: torch.device,
) -> ResolvedOptions:
    """Fill in defaults. On a GPU, call it with the model's weights already in place: the
    default KV cache takes a share of the memory still free."""
    defaults = CPU_DEFAULTS if device.type == "cpu" else GPU_DEFAULTS
    max_batch = opts.max_batch or defaults["max_batch"]
    token_budget = opts.token_budget or max(defaults["token_budget"], max_batch)
    max_model_len = default_max_model_len(opts, model_max_len)
    for name, value in [
        ("max_batch", max_batch),
        ("token_budget", token_budget),
        ("block_size", opts.block_size),
        ("max_model_len", max_model_len),
    ]:
        _positive(name, value)
    if not isinstance(opts.mixed_graph_tokens, int) or isinstance(opts.mixed_graph_tokens, bool) or opts.mixed_graph_tokens < 0:
        raise ConfigError(f"option mixed_graph_tokens must be an integer >= 0 (0: off), got {opts.mixed_graph_tokens!r}")
    if opts.queue_order not in QUEUE_ORDERS:
        raise ConfigError(f"option queue_order must be one of {', '.join(QUEUE_ORDERS)}, got {opts.queue_order!r}")
    if opts.admission not in ADMISSIONS:
        raise ConfigError(f"option admission must be one of {', '.join(ADMISSIONS)}, got {opts.admission!r}")
    if token_budget < max_batch:
        raise ConfigError(
            f"token_budget ({token_budget}) must be >= max_batch ({max_batch}): every running "
            "request needs one token per decode step"
        )
    if max_model_len > model_max_len:
        raise ConfigError(
            f"max_model_len {max_model_len} exceeds the model's max_position_embeddings {model_max_len}"
        )

    if opts.kv_tokens is not None:
        _positive("kv_tokens", opts.kv_tokens)
        kv_tokens = opts.kv_tokens
    elif opts.kv_memory is not None:
        _positive("kv_memory", opts.kv_memory)
        kv_tokens = opts.kv_memory // kv_bytes_per_token
    elif device.type == "cpu":
        kv_tokens = min(defaults["kv_memory"] // kv_bytes_per_token, max_batch * max_model_len)
    else:
        free, _total = torch.cuda.mem_get_info(device)
        kv_tokens = int(free * GPU_KV_SHARE) // kv_bytes_per_token
    num_blocks = kv_tokens // opts.block_size
    if num_blocks * opts.block_size < max_model_len:
        raise ConfigError(
            f"KV cache of {kv_tokens} tokens ({kv_tokens * kv_bytes_per_token / 2**20:.1f} MiB) "
            f"is too small for even one request of max_model_len={max_model_len}: give more "
            "kv_memory / kv_tokens or a smaller max_model_len"
        )
    return ResolvedOptions(
        max_batch=max_batch,
        token_budget=token_budget,
        block_size=opts.block_size,
        num_blocks=num_blocks,
        max_model_len=max_model_len,
        prefix_caching=bool(opts.prefix_caching),
        attention=opts.attention,
        cuda_graphs=bool(opts.cuda_graphs) and device.type == "cuda",
        kv_bytes_per_token=kv_bytes_per_token,
        async_scheduling=bool(opts.async_scheduling),
        batch_invariant=bool(opts.batch_invariant),
        mixed_graph_tokens=min(opts.mixed_graph_tokens, token_budget) if opts.cuda_graphs else 0,
        step_timing=bool(opts.step_timing),
        queue_order=opts.queue_order,
        admission=opts.admission,
    )
