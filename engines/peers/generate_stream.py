"""Per-request streaming and stopping inside one `model.generate` batch.

generate() runs a padded batch until its longest request is done, and knows nothing of the
requests inside it. Two hooks fill that in:

- `BatchStream` is generate's streamer: every put() after the first (the prompt) carries the
  [B] tokens of one decoding step; each row's token goes to the harness at once, until the
  row has its own max_new_tokens or meets one of its own stop ids. Later tokens of a finished
  row are computed (that is padded batching) but never reported.
- `RowsDone` is a stopping criterion that marks the same rows finished inside generate, so
  the batch ends as soon as its last live row does (shorter than max_new_tokens when rows
  stop early or are aborted), and at once when the engine closes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import torch
from transformers.generation.stopping_criteria import StoppingCriteria
from transformers.generation.streamers import BaseStreamer

from engines.request import Request


class BatchStream(BaseStreamer):
    def __init__(self, requests: list[Request], emit: Callable, is_aborted: Callable[[str], bool]):
        self.requests = requests
        self.emit = emit  # emit(request_id, token_ids, finished=..., status=..., error=...)
        self.is_aborted = is_aborted
        self.counts = [0] * len(requests)
        self.done = [False] * len(requests)
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate hands over the prompt first
            self._prompt_seen = True
            return
        tokens = value.reshape(len(self.requests), -1)[:, -1].tolist()
        for i, (request, token) in enumerate(zip(self.requests, tokens)):
            if self.done[i]:
                continue
            if self.is_aborted(request.id):
                self.done[i] = True
                continue
            self.counts[i] += 1
            self.done[i] = self.counts[i] >= request.max_new_tokens or token in request.stop_token_ids
            self.emit(request.id, [token], finished=self.done[i])

    def end(self) -> None:
        pass

    def fail(self, message: str) -> None:
        """End every row still running with an error (tokens already sent stay valid)."""
        for i, request in enumerate(self.requests):
            if not self.done[i]:
                self.done[i] = True
                self.emit(request.id, [], finished=True, status="error", error=message)

    def close_unfinished(self) -> None:
        """After generate returned: a live row without all its tokens means generate stopped
        short (or the engine is closing); say so rather than leave the request open."""
        for i, request in enumerate(self.requests):
            if not self.done[i] and not self.is_aborted(request.id):
                self.done[i] = True
                message = f"generate stopped after {self.counts[i]} of {request.max_new_tokens} tokens"
                self.emit(request.id, [], finished=True, status="error", error=message)


class RowsDone(StoppingCriteria):
    def __init__(
        self,
        requests: list[Request],
        prompt_len: int,
        device: torch.device,
        is_aborted: Callable[[str], bool],
        stopping: threading.Event,
    ):
        self.requests = requests
        self.prompt_len = prompt_len  # the padded prompt width: generated = width - prompt_len
        self.is_aborted = is_aborted
        self.stopping = stopping
        # Limits and stop ids live on the device, so the check costs no host sync.
        self.limits = torch.tensor([r.max_new_tokens for r in requests], device=device)
        widest = max(len(r.stop_token_ids) for r in requests)
        self.stop_ids = None
        if widest:
            rows = [list(r.stop_token_ids) + [-1] * (widest - len(r.stop_token_ids)) for r in requests]
            self.stop_ids = torch.tensor(rows, device=device)

    def __call__(self, input_ids: torch.Tensor, scores, **kwargs) -> torch.BoolTensor:
        done = self.limits <= input_ids.shape[1] - self.prompt_len
        if self.stop_ids is not None:
            done |= (input_ids[:, -1:] == self.stop_ids).any(dim=-1)
        if self.stopping.is_set():
            done |= True
        aborted = [self.is_aborted(r.id) for r in self.requests]
        if any(aborted):
            done |= torch.tensor(aborted, device=done.device)
        return done
