"""What the bench tests share: fast run options, a small workload, an engine that fails on cue."""

from __future__ import annotations

from engines.mock import MockEngine

SMALL = "quick:num_requests=6,output=uniform(2,12)"
FAST = ["--no-progress", "--no-roofline", "--warmup-requests", "1"]


class Exploding(MockEngine):
    """Raises `exc` at its step number `at` (warm-up steps count too)."""

    def __init__(self, exc, at, **kw):
        super().__init__(**kw)
        self.exc, self.at, self.count = exc, at, 0

    def step(self):
        self.count += 1
        if self.count == self.at:
            raise self.exc
        return super().step()
