"""A built workload: the requests, how they arrive, and where they came from.

Builders (synthetic generators, trace loaders, presets) all return a `Workload`; the runner
needs nothing else. Arrival times live on the requests (`Request.arrival_s`); `mode` says
how the runner must honour them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from engines.request import Request

# offline: every request is handed over at t = 0 whatever its arrival_s;
# open: each request is handed over at its arrival_s by wall clock (open loop);
# closed: `concurrency` clients, each sending its next request when its last one ends.
MODES = ("offline", "open", "closed")


@dataclass
class Workload:
    name: str
    requests: list[Request]
    mode: str = "offline"
    concurrency: int | None = None  # closed mode only
    spec: dict = field(default_factory=dict)  # the full spec it was built from (JSON-able)
    notes: list[str] = field(default_factory=list)  # what a loader dropped, clipped, rescaled

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"workload mode must be one of {MODES}, got {self.mode!r}")
        if self.mode == "closed" and not (self.concurrency and self.concurrency >= 1):
            raise ValueError("a closed-loop workload needs concurrency >= 1")

    @cached_property
    def content_hash(self) -> str:
        """sha256 over everything that reaches an engine: two workloads with the same hash
        send the same requests at the same times. Computed once: do not mutate requests."""
        h = hashlib.sha256()
        h.update(json.dumps({"mode": self.mode, "concurrency": self.concurrency}).encode())
        for r in self.requests:
            h.update(
                json.dumps(
                    [
                        r.id,
                        round(r.arrival_s, 9),
                        r.max_new_tokens,
                        list(r.stop_token_ids),
                        [r.sampling.temperature, r.sampling.top_k, r.sampling.top_p, r.sampling.seed],
                    ]
                ).encode()
            )
            h.update(len(r.prompt_ids).to_bytes(4, "little"))
            h.update(np.asarray(r.prompt_ids, dtype=np.int64).tobytes())
        return h.hexdigest()

    def describe(self) -> dict:
        """For the run manifest."""
        return {
            "name": self.name,
            "mode": self.mode,
            "concurrency": self.concurrency,
            "num_requests": len(self.requests),
            "prompt_tokens": sum(len(r.prompt_ids) for r in self.requests),
            "max_new_tokens": sum(r.max_new_tokens for r in self.requests),
            "content_hash": self.content_hash,
            "spec": self.spec,
            "notes": self.notes,
        }
