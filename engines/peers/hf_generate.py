"""`hf-generate`: transformers' `model.generate` on left-padded batches, the way most people
first serve a model, run inside the harness on the very weights the in-repo engines use.

A worker thread takes up to `max_batch` waiting requests, left-pads their prompts into one
rectangle and calls generate() with max_new_tokens = the batch's largest. Requests that
arrive meanwhile wait for the whole batch to end (that is padded batching). Tokens are
streamed step by step (engines.peers.generate_stream); each request finishes at its own
max_new_tokens or stop id, and end-of-sequence is otherwise ignored, as benchmarks do.

A generate() call has one sampling setting, so a batch holds requests of one kind only:
the oldest waiting request picks it (greedy, or one (temperature, top_k, top_p)) and the
batch is filled with the waiting requests that share it, in arrival order; the others wait
for a later batch. Sampled tokens come from torch's global generator, so per-request seeds
are not honoured: sampled outputs follow the same distribution as the in-repo engines' but
are not the same tokens. Greedy outputs are the same tokens.
"""

from __future__ import annotations

import threading
from collections import deque

import torch
from transformers import GenerationConfig
from transformers.generation.stopping_criteria import StoppingCriteriaList

from engines.model.weights import load_weights
from engines.peers.generate_stream import BatchStream, RowsDone
from engines.peers.hf_model import build_hf_model
from engines.peers.peer_options import Option, check_options
from engines.peers.threaded import ThreadedEngine
from engines.request import ConfigError, Request, SamplingParams

PAD_ID = 0  # any id works: padded positions are masked out
DEFAULT_MAX_MODEL_LEN = 4096

OPTIONS = {
    "max_batch": Option(int, "most requests in one generate() batch (default 64 on GPU, 32 on CPU)", minimum=1),
    "attn_implementation": Option(str, "transformers attention implementation (default sdpa)"),
    "max_model_len": Option(int, "longest prompt + output accepted (default min(model's, 4096))", minimum=2),
}


def sampling_key(s: SamplingParams) -> tuple:
    """Requests with equal keys can share one generate() call."""
    return ("greedy",) if s.greedy else ("sample", s.temperature, s.top_k, s.top_p)


def generation_config(batch: list[Request]) -> GenerationConfig:
    s = batch[0].sampling
    sampling = {} if s.greedy else dict(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p)
    return GenerationConfig(
        max_new_tokens=max(r.max_new_tokens for r in batch),
        do_sample=not s.greedy,
        eos_token_id=None,
        pad_token_id=PAD_ID,
        **sampling,
    )


def left_pad(batch: list[Request], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask), both [B, longest prompt], prompts aligned to the right."""
    width = max(len(r.prompt_ids) for r in batch)
    ids = torch.full((len(batch), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, r in enumerate(batch):
        ids[row, width - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids)
        mask[row, width - len(r.prompt_ids) :] = 1
    return ids.to(device), mask.to(device)


class HFGenerateEngine(ThreadedEngine):
    def __init__(self, model, *, max_batch: int, max_model_len: int, options: dict, model_info: dict):
        super().__init__(
            "hf-generate",
            vocab_size=model.config.vocab_size,
            max_model_len=max_model_len,
            options=options,
            model_info=model_info,
        )
        self.model = model
        self.device = model.device
        self.max_batch = max_batch
        self._waiting: deque[Request] = deque()
        self._aborted: set[str] = set()  # ids of requests inside the running batch
        self._lock = threading.Condition()
        self.start()

    def _submit(self, request: Request) -> None:
        with self._lock:
            self._aborted.discard(request.id)
            self._waiting.append(request)
            self._lock.notify()

    def _cancel(self, request_id: str) -> None:
        with self._lock:
            kept = deque(r for r in self._waiting if r.id != request_id)
            if len(kept) == len(self._waiting):
                self._aborted.add(request_id)  # running: its row is dropped at the next step
            self._waiting = kept

    def _is_aborted(self, request_id: str) -> bool:
        return request_id in self._aborted

    def _interrupt(self) -> None:
        with self._lock:
            self._lock.notify_all()

    def _release(self) -> None:
        self.model = None

    def _take_batch(self) -> list[Request]:
        with self._lock:
            while not self._waiting and not self.stopping.is_set():
                self._lock.wait(timeout=0.1)
            if self.stopping.is_set():
                return []
            key = sampling_key(self._waiting[0].sampling)
            batch = [r for r in self._waiting if sampling_key(r.sampling) == key][: self.max_batch]
            taken = {id(r) for r in batch}
            self._waiting = deque(r for r in self._waiting if id(r) not in taken)
            return batch

    def _work(self) -> None:
        if self.device.type == "cuda" and self.device.index is not None:
            torch.cuda.set_device(self.device)  # the current device is per thread
        while not self.stopping.is_set():
            batch = self._take_batch()
            if batch:
                self._run_batch(batch)

    def _run_batch(self, batch: list[Request]) -> None:
        input_ids, attention_mask = left_pad(batch, self.device)
        stream = BatchStream(batch, self.emit, self._is_aborted)
        rows_done = RowsDone(batch, input_ids.shape[1], self.device, self._is_aborted, self.stopping)
        try:
            self.model.generate(
                input_ids=input_ids,
                attention_mask=attention_mask,
                generation_config=generation_config(batch),
                streamer=stream,
                stopping_criteria=StoppingCriteriaList([rows_done]),
            )
        except Exception as e:  # noqa: BLE001 - one failed batch ends its own requests only
            stream.fail(f"generate failed: {type(e).__name__}: {e}")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()  # after an out-of-memory error the next batch may fit
        else:
            stream.close_unfinished()
        finally:
            with self._lock:
                self._aborted.difference_update(r.id for r in batch)


def build_engine(
    name: str = "hf-generate",
    model: str = "tiny",
    *,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    **options,
) -> HFGenerateEngine:
    opts = check_options(name, options, OPTIONS)
    weights = load_weights(model, device=device, dtype=dtype, seed=seed)
    model_max_len = weights.config.max_position_embeddings
    max_model_len = opts.get("max_model_len") or min(model_max_len, DEFAULT_MAX_MODEL_LEN)
    if max_model_len > model_max_len:
        raise ConfigError(
            f"engine {name!r}: max_model_len={max_model_len} exceeds the model's "
            f"max_position_embeddings={model_max_len}"
        )
    max_batch = opts.get("max_batch") or (64 if weights.device.type == "cuda" else 32)
    attn = opts.get("attn_implementation") or "sdpa"
    model_info = weights.describe()
    hf = build_hf_model(weights, attn)
    resolved = {
        "max_batch": max_batch,
        "attn_implementation": hf.config._attn_implementation,
        "max_model_len": max_model_len,
    }
    return HFGenerateEngine(
        hf, max_batch=max_batch, max_model_len=max_model_len, options=resolved, model_info=model_info
    )
