"""Requests before they have token ids: what every source (generator or trace) produces.

Lengths and arrival times are decided first, fitted to the model's context, and only then
turned into prompt token ids; keeping the steps apart is what lets one arrival process,
one clipping rule and one prompt maker serve every source.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DraftRequest:
    id: str
    prompt_len: int
    output_len: int
    arrival_s: float | None = None  # from a trace's timestamps; None for generated ones
    hash_ids: tuple[int, ...] | None = None  # Mooncake: one id per block of prompt tokens


@dataclass
class Draft:
    requests: list[DraftRequest]
    notes: list[str] = field(default_factory=list)
    # Prompts built from hash_ids blocks of this many tokens (Mooncake); None: random ids.
    block_tokens: int | None = None

    @property
    def has_times(self) -> bool:
        return bool(self.requests) and all(r.arrival_s is not None for r in self.requests)
