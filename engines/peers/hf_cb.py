"""`hf-cb`: transformers' own continuous batching (its ContinuousBatchingManager: paged KV
cache, FIFO scheduling, chunked prefill), run inside the harness on the very weights the
in-repo engines use.

The manager runs the model on a thread of its own. Requests go straight to it with their own
max_new_tokens (end-of-sequence ignored unless the request has stop ids, which become the
request's own eos ids); a pump thread reads its streamed outputs, which carry every token
generated so far, and hands the harness only the new ones.

Greedy only: the manager samples with one generation config for all requests, so a sampling
request is refused with a RequestError rather than run with the wrong parameters.

The options are transformers' ContinuousBatchingConfig knobs (names of the installed release,
feature-detected: `block_size` is `page_size` from 5.17 on), so a report can show the peer at
its best, not only at its defaults. On a GPU, unset sizes are left to transformers (it takes
about 90% of free memory for its cache); on the CPU the cache defaults to 16384 tokens and
512 tokens per batch, since transformers would otherwise take 60% of the machine's RAM.
"""

from __future__ import annotations

import dataclasses
import inspect
import math

import transformers
from transformers import GenerationConfig

from engines.model.weights import load_weights
from engines.peers.hf_model import build_hf_model
from engines.peers.peer_options import Option, check_options
from engines.peers.threaded import ThreadedEngine
from engines.request import ConfigError, Request, RequestError

DEFAULT_MAX_MODEL_LEN = 4096
CPU_CACHE_TOKENS = 16384
CPU_MAX_BATCH_TOKENS = 512
RESULT_POLL_S = 0.05  # how long the pump waits on the manager before checking it is alive

# Our option name -> the ContinuousBatchingConfig field names it may have, newest first.
CB_FIELDS = {
    "use_cuda_graph": ("use_cuda_graph",),
    "max_batch_tokens": ("max_batch_tokens",),
    "num_blocks": ("num_blocks",),
    "block_size": ("page_size", "block_size"),
    "max_requests_per_batch": ("max_requests_per_batch",),
    "default_compile_level": ("default_compile_level",),
    "use_async_batching": ("use_async_batching",),
    "max_memory_percent": ("max_memory_percent",),
    "allow_block_sharing": ("allow_block_sharing",),
    "scheduler": ("scheduler_type", "scheduler"),
}
OPTIONS = {
    "use_cuda_graph": Option(bool, "CUDA graphs for the varlen and decode paths (default: transformers decides)"),
    "max_batch_tokens": Option(int, "most tokens in one forward (default 8192 on GPU, 512 on CPU)", minimum=1),
    "num_blocks": Option(int, "KV cache blocks (default ~90% of free GPU memory; 16384 tokens on CPU)", minimum=1),
    "block_size": Option(int, "tokens per KV block (page_size in transformers >= 5.17; default 256)", minimum=4),
    "max_requests_per_batch": Option(int, "most requests in one forward", minimum=1),
    "default_compile_level": Option(int, "torch.compile level for both paths, 0 (off) to 3", choices=(0, 1, 2, 3)),
    "use_async_batching": Option(bool, "double-buffered batches (default: on with CUDA graphs and no mask)"),
    "max_memory_percent": Option(float, "share of free memory for the cache when num_blocks is unset", minimum=0.0),
    "allow_block_sharing": Option(bool, "prefix sharing between requests (default true)"),
    "scheduler": Option(str, "transformers scheduler: fifo or prefill_first"),
    "attn_implementation": Option(str, "attention to build the model with (default sdpa; transformers may switch)"),
    "max_model_len": Option(int, "longest prompt + output (default min(model's, 4096, cache size))", minimum=2),
}


def continuous_batching_config_class():
    try:
        from transformers.generation.configuration_utils import ContinuousBatchingConfig
    except ImportError as e:
        raise ConfigError(
            f"hf-cb needs transformers' ContinuousBatchingConfig, which transformers "
            f"{transformers.__version__} does not have"
        ) from e
    return ContinuousBatchingConfig


def cb_config_kwargs(opts: dict, cb_class, on_cpu: bool) -> dict:
    """ContinuousBatchingConfig kwargs from our options, for the installed field names."""
    defaults = {f.name: f.default for f in dataclasses.fields(cb_class)}
    kwargs = {}
    for ours, candidates in CB_FIELDS.items():
        if opts.get(ours) is None:
            continue
        field = next((f for f in candidates if f in defaults), None)
        if field is None:
            raise ConfigError(
                f"engine 'hf-cb': option {ours} is not supported by the installed transformers "
                f"{transformers.__version__} (no ContinuousBatchingConfig field {' or '.join(candidates)})"
            )
        kwargs[field] = opts[ours]
    if on_cpu:
        block_field = next(f for f in CB_FIELDS["block_size"] if f in defaults)
        block = kwargs.get(block_field) or defaults[block_field] or 256
        kwargs.setdefault("num_blocks", math.ceil(CPU_CACHE_TOKENS / block))
        kwargs.setdefault("max_batch_tokens", CPU_MAX_BATCH_TOKENS)
    return kwargs


def resolved_options(manager) -> dict:
    """What the manager actually runs with, once its cache exists."""
    cfg = manager.continuous_batching_config
    block = getattr(cfg, "page_size", None) or getattr(cfg, "block_size", None)
    out = {"attn_implementation": manager.model.config._attn_implementation}
    for ours, candidates in CB_FIELDS.items():
        field = next((f for f in candidates if hasattr(cfg, f)), None)
        if field is not None:
            value = getattr(cfg, field)
            out[ours] = list(value) if isinstance(value, tuple) else value
    out["block_size"] = block
    out["cache_tokens"] = (cfg.num_blocks or 0) * (block or 0)
    out["decode_fast_path"] = bool(getattr(cfg, "max_blocks_per_request", 0))
    return out


class HFContinuousBatchingEngine(ThreadedEngine):
    def __init__(self, model, manager, *, max_model_len: int, options: dict, model_info: dict):
        super().__init__(
            "hf-cb",
            vocab_size=model.config.vocab_size,
            max_model_len=max_model_len,
            options=options,
            model_info=model_info,
        )
        self.model = model
        self.manager = manager
        self._sent: dict[str, int] = {}  # tokens already handed over, per request
        self.start()

    def _check(self, request: Request) -> None:
        if not request.sampling.greedy:
            raise RequestError(
                f"request {request.id!r}: hf-cb runs greedy only (transformers' continuous batching "
                f"samples with one setting for all requests), got temperature={request.sampling.temperature}"
            )

    def _submit(self, request: Request) -> None:
        self._sent[request.id] = 0
        accepted = self.manager.add_request(
            list(request.prompt_ids),
            request_id=request.id,
            max_new_tokens=request.max_new_tokens,
            streaming=True,
            eos_token_id=list(request.stop_token_ids) or -1,  # -1: no end-of-sequence
        )
        if accepted is None:
            self.emit(request.id, [], True, "error", "transformers' manager refused the request (it is stopping)")

    def _cancel(self, request_id: str) -> None:
        self.manager.cancel_request(request_id)
        self._sent.pop(request_id, None)

    def _work(self) -> None:
        while not self.stopping.is_set():
            out = self.manager.get_result(timeout=RESULT_POLL_S)
            if out is not None:
                self._forward(out)
            elif not self.manager.is_running() and not self.stopping.is_set():
                status = getattr(self.manager, "background_thread_status", None)
                raise RuntimeError(
                    f"transformers' generation loop stopped: {getattr(status, 'fatal_error', None) or 'no error given'}"
                )

    def _forward(self, out) -> None:
        """The manager's outputs hold all tokens so far: pass on the new ones."""
        rid = out.request_id
        tokens = list(out.generated_tokens)
        sent = self._sent.get(rid, 0)
        finished = out.is_finished()
        if finished:
            self._sent.pop(rid, None)
        else:
            self._sent[rid] = max(sent, len(tokens))
        if out.error is not None or (finished and out.status.name == "FAILED"):
            self.emit(rid, tokens[sent:], True, "error", f"transformers: {out.error or 'request failed'}")
        elif len(tokens) < sent:
            self.emit(rid, [], True, "error", f"transformers' output went back from {sent} to {len(tokens)} tokens")
        else:
            self.emit(rid, tokens[sent:], finished)

    def _interrupt(self) -> None:
        stop = self.manager.stop
        kwargs = {"hard_stop": True} if "hard_stop" in inspect.signature(stop).parameters else {}
        stop(block=True, timeout=30, **kwargs)
        if hasattr(self.manager, "destroy"):
            self.manager.destroy()

    def _release(self) -> None:
        self.manager = None
        self.model = None


def build_engine(
    name: str = "hf-cb",
    model: str = "tiny",
    *,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    **options,
) -> HFContinuousBatchingEngine:
    opts = check_options(name, options, OPTIONS)
    cb_class = continuous_batching_config_class()
    weights = load_weights(model, device=device, dtype=dtype, seed=seed)
    cb_kwargs = cb_config_kwargs(opts, cb_class, on_cpu=weights.device.type == "cpu")
    model_max_len = weights.config.max_position_embeddings
    wanted = opts.get("max_model_len")
    if wanted is not None and wanted > model_max_len:
        raise ConfigError(
            f"engine {name!r}: max_model_len={wanted} exceeds the model's max_position_embeddings={model_max_len}"
        )
    model_info = weights.describe()
    hf = build_hf_model(weights, opts.get("attn_implementation") or "sdpa")
    # eos -1 is transformers' "no end-of-sequence"; requests bring their own stop ids.
    generation = GenerationConfig(do_sample=False, eos_token_id=-1, pad_token_id=0)
    try:
        manager = hf.init_continuous_batching(
            generation_config=generation, continuous_batching_config=cb_class(**cb_kwargs)
        )
        manager.warmup()  # sizes the cache (and captures graphs / compiles) before any timing
    except (ValueError, RuntimeError, MemoryError, NotImplementedError) as e:
        raise ConfigError(
            f"transformers' continuous batching cannot run here ({weights.device}): {type(e).__name__}: {e}"
        ) from e
    options_out = resolved_options(manager)
    cache_tokens = options_out["cache_tokens"]
    if wanted is not None and wanted > cache_tokens:
        raise ConfigError(
            f"engine {name!r}: max_model_len={wanted} exceeds the KV cache ({cache_tokens} tokens; "
            "raise num_blocks or block_size)"
        )
    max_model_len = wanted or min(model_max_len, DEFAULT_MAX_MODEL_LEN, cache_tokens)
    options_out["max_model_len"] = max_model_len
    manager.start()
    return HFContinuousBatchingEngine(
        hf, manager, max_model_len=max_model_len, options=options_out, model_info=model_info
    )
