"""Workload anchor-a, exactly as METRICS.md defines it, for comparisons across tools.

256 requests at t = 0. From Python's random.Random(0), per request in order: the prompt length
(uniform integer in [64, 1024]), the output length (uniform integer in [16, 512]), then the
prompt's token ids (uniform in [3, 128000)). Greedy, outputs run to full length.
138,199 prompt tokens and 65,940 output tokens in all.

The ids assume a vocabulary of at least 128,000 (a Llama-3-sized one): a smaller model gets
an error, never remapped ids, because remapped ids would be a different workload under the
same name.
"""

from __future__ import annotations

import random

from workloads.errors import WorkloadError

NUM_REQUESTS = 256
PROMPT_RANGE = (64, 1024)
OUTPUT_RANGE = (16, 512)
TOKEN_RANGE = (3, 128_000)  # half-open


def anchor_a_requests(vocab_size: int, max_model_len: int) -> list[tuple[str, list[int], int]]:
    """[(id, prompt ids, output length)] for anchor-a; WorkloadError if the model cannot take it."""
    if vocab_size < TOKEN_RANGE[1]:
        raise WorkloadError(
            f"anchor-a draws token ids up to {TOKEN_RANGE[1] - 1} and needs a vocabulary of at "
            f"least {TOKEN_RANGE[1]:,}; this model has {vocab_size:,} (ids are never remapped: "
            "use a model with a larger vocabulary, or another workload)"
        )
    rng = random.Random(0)
    out = []
    for i in range(NUM_REQUESTS):
        prompt_len = rng.randint(*PROMPT_RANGE)
        output_len = rng.randint(*OUTPUT_RANGE)
        ids = [rng.randrange(*TOKEN_RANGE) for _ in range(prompt_len)]
        out.append((f"r{i:05d}", ids, output_len))
    longest = max(len(ids) + o for _, ids, o in out)
    if longest > max_model_len:
        raise WorkloadError(
            f"anchor-a's longest request is {longest} tokens (prompt + output) and needs "
            f"max_model_len >= {longest}; this model has {max_model_len} (anchor-a is never clipped)"
        )
    return out
