"""What a policy decides for one step: which sequences compute how many tokens.

A plain data object, as in vLLM's scheduler output: the policy fills it, the model runner
executes it, and the engine applies the results. Policies are tested on the CPU by handing
them made-up results, without a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engines.core.sequence import Sequence


@dataclass
class Chunk:
    """seq computes tokens token_ids[num_computed : num_computed + num_tokens] this step.

    num_pad: left-pad cache entries written before them (padded engine's prefill).
    wasted: a finished row of a padded batch that still computes one throwaway token.
    """

    seq: Sequence
    num_tokens: int
    num_pad: int = 0
    wasted: bool = False

    @property
    def num_entries(self) -> int:
        """Cache entries this chunk writes (and positions it computes)."""
        return 1 if self.wasted else self.num_pad + self.num_tokens

    @property
    def samples(self) -> bool:
        """Whether the step ends with logits for this sequence (its next token, or a
        throwaway one for a wasted row)."""
        return self.wasted or self.seq.num_computed + self.num_tokens == self.seq.num_tokens


@dataclass
class StepPlan:
    chunks: list[Chunk] = field(default_factory=list)
    preempted: list[Sequence] = field(default_factory=list)
    prefix_hit_tokens: int = 0
    idle_slots: int = 0

    @property
    def is_empty(self) -> bool:
        return not self.chunks
