"""Prompt token ids. No trace carries prompt text, so prompts are synthesised: random ids of
the right length, optionally with a shared prefix, or (Mooncake) blocks derived from hash ids.

Ids are drawn uniformly from [vocab_low, vocab_size); the default vocab_low = 3 keeps clear of
ids 0-2, which are often special (pad, bos, eos) and may change what an engine does.
"""

from __future__ import annotations

import numpy as np

from workloads.errors import WorkloadError


def check_vocab(vocab_low: int, vocab_size: int) -> None:
    if not (0 <= vocab_low < vocab_size):
        raise WorkloadError(
            f"token ids are drawn from [vocab_low, vocab_size) = [{vocab_low}, {vocab_size}): "
            "expected 0 <= vocab_low < vocab_size"
        )


def random_prompts(
    lengths: list[int], rng: np.random.Generator, vocab_low: int, vocab_size: int
) -> list[np.ndarray]:
    # One draw for all prompts, then cut: fast, and prompt i depends only on the lengths
    # before it, never on how many prompts follow.
    ids = rng.integers(vocab_low, vocab_size, size=sum(lengths), dtype=np.int64)
    return np.split(ids, np.cumsum(lengths)[:-1]) if lengths else []


def share_prefix(
    prompts: list[np.ndarray],
    fraction: float,
    prefix_tokens: int,
    rng: np.random.Generator,
    vocab_low: int,
    vocab_size: int,
) -> tuple[list[np.ndarray], str]:
    """Give round(fraction * n) requests, chosen at random, one common prefix.

    The prefix overwrites the start of each chosen prompt, so prompt lengths stay what the
    length distribution or trace said; a prompt no longer than the prefix keeps its last
    token its own (a prompt identical to another would be a different experiment).
    """
    n = len(prompts)
    k = round(fraction * n)
    prefix = rng.integers(vocab_low, vocab_size, size=prefix_tokens, dtype=np.int64)
    chosen = rng.choice(n, size=k, replace=False) if k else np.zeros(0, dtype=np.int64)
    out = list(prompts)
    for i in chosen:
        m = min(prefix_tokens, len(out[i]) - 1)
        out[i] = np.concatenate([prefix[:m], out[i][m:]])
    note = (
        f"shared prefix: {k} of {n} requests start with the same {prefix_tokens}-token prefix "
        f"(shorter prompts share all but their last token)"
    )
    return out, note


def block_prompts(
    hash_ids: list[tuple[int, ...]],
    lengths: list[int],
    block_tokens: int,
    seed: int,
    vocab_low: int,
    vocab_size: int,
) -> list[np.ndarray]:
    """Prompt i = concat(block(h) for h in hash_ids[i]) cut to lengths[i] tokens.

    block(h) depends only on (seed, h): equal hash ids give equal token blocks in every
    request, so a prefix cache sees exactly the sharing the trace recorded.
    """
    blocks: dict[int, np.ndarray] = {}

    def block(h: int) -> np.ndarray:
        if h not in blocks:
            rng = np.random.default_rng([seed, 0x4D6F6F6E, h])  # "Moon": a stream of its own
            blocks[h] = rng.integers(vocab_low, vocab_size, size=block_tokens, dtype=np.int64)
        return blocks[h]

    prompts = []
    for ids, n in zip(hash_ids, lengths):
        need = -(-n // block_tokens)
        if need > len(ids):
            raise WorkloadError(
                f"a prompt of {n} tokens needs {need} blocks of {block_tokens} but has "
                f"{len(ids)} hash ids"
            )
        prompts.append(np.concatenate([block(h) for h in ids[:need]])[:n])
    return prompts
