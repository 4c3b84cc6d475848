"""GPU: the Triton paged attention's tile configurations, timed on anchor-a-like batches.

For the Llama 1B (head_dim 64) and 8B (head_dim 128) head shapes (32 query heads, 8 KV heads,
bf16, 16-token pages): a prefill batch of fresh prompts (uniform 64..1024 tokens, about 8192
in all, like one step of the token budget) and a decode batch (256 sequences, one query each,
contexts of anchor-a's lengths). Each configuration's output is checked against the default
configuration's before it is timed. Prints prefill TFLOP/s (causal pairs counted once) and
decode GB/s of K/V read, best first; with a path, writes the rows as JSON.

    PYTHONPATH=. python benchmarks/attention_configs.py [out.json]
"""

from __future__ import annotations

import itertools
import json
import random
import sys

import torch

from engines.attention.metadata import AttentionMetadata
from engines.attention.triton_paged import DECODE, PREFILL, TileConfig, TritonPagedAttention

SHAPES = {"1B": 64, "8B": 128}  # head_dim; both have 32 query and 8 KV heads
HEADS, KV_HEADS, PAGE = 32, 8, 16


def batch(query_lens: list[int], seq_lens: list[int], head_dim: int, device, dtype=torch.bfloat16):
    """Random q and a paged cache holding every sequence's keys, blocks laid out in order."""
    pages = [-(-n // PAGE) for n in seq_lens]
    width = max(pages)
    tables = torch.zeros(len(seq_lens), width, dtype=torch.int32)
    first = 0
    for i, n in enumerate(pages):
        tables[i, :n] = torch.arange(first, first + n)
        first += n
    cache = lambda: torch.randn(first + 1, PAGE, KV_HEADS, head_dim, dtype=dtype, device=device)  # noqa: E731
    tokens = sum(query_lens)
    query_start = torch.zeros(len(query_lens) + 1, dtype=torch.int32)
    query_start[1:] = torch.tensor(query_lens).cumsum(0)
    meta = AttentionMetadata(
        query_start=query_start.to(device), seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=device),
        key_start=torch.zeros(len(seq_lens), dtype=torch.int32, device=device), block_tables=tables.to(device),
        slot_mapping=torch.full((tokens,), first * PAGE, dtype=torch.long, device=device),  # writes go to a spare page
        query_lens=query_lens, seq_lens_host=seq_lens, key_start_host=[0] * len(seq_lens), block_size=PAGE,
    )
    q = torch.randn(tokens, HEADS, head_dim, dtype=dtype, device=device)
    kv = torch.randn(tokens, KV_HEADS, head_dim, dtype=dtype, device=device)
    return q, kv, cache(), cache(), meta


def run(attention, q, kv, k_cache, v_cache, meta):
    return attention(q, kv, kv, k_cache, v_cache, meta, attention.prepare(meta))


def main() -> int:
    import triton

    if not torch.cuda.is_available():
        print("needs a CUDA GPU")
        return 2
    device = torch.device("cuda")
    rng = random.Random(0)
    prompts = []
    while sum(prompts) < 8192:
        prompts.append(rng.randint(64, 1024))
    contexts = [rng.randint(64, 1024) + rng.randint(0, 511) for _ in range(256)]
    rows = []
    for shape, head_dim in SHAPES.items():
        scale = head_dim**-0.5
        work = {
            "prefill": (batch(prompts, prompts, head_dim, device),
                        4 * HEADS * head_dim * sum(p * (p + 1) / 2 for p in prompts), "TFLOP/s"),
            "decode": (batch([1] * len(contexts), contexts, head_dim, device),
                       2 * KV_HEADS * head_dim * 2 * sum(contexts), "GB/s"),
        }
        candidates = {
            "prefill": [TileConfig(r, n, w, s) for r, n, w, s in itertools.product([64, 128], [64, 128], [4, 8], [2, 3])],
            "decode": [TileConfig(16, n, w, s) for n, w, s in itertools.product([32, 64, 128], [4, 8], [2, 3, 4])],
        }
        for kind, (args, amount, unit) in work.items():
            default = TritonPagedAttention(scale, HEADS, KV_HEADS, head_dim)
            expected = run(default, *args)
            for config in [PREFILL if kind == "prefill" else DECODE] + candidates[kind]:
                attention = TritonPagedAttention(scale, HEADS, KV_HEADS, head_dim, **{kind: config})
                try:
                    out = run(attention, *args)
                    ok = bool(torch.allclose(out.float(), expected.float(), atol=2e-2, rtol=2e-2))
                    ms = triton.testing.do_bench(lambda: run(attention, *args), warmup=10, rep=50)
                except Exception as error:  # a configuration that does not fit (shared memory)
                    print(f"{shape} {kind} {config}: {type(error).__name__}: {str(error)[:100]}")
                    continue
                rate = amount / (ms / 1e3) / (1e12 if unit == "TFLOP/s" else 1e9)
                rows.append(dict(shape=shape, kind=kind, rows=config.rows, block_n=config.block_n,
                                 num_warps=config.num_warps, num_stages=config.num_stages,
                                 ms=round(ms, 4), rate=round(rate, 1), unit=unit, ok=ok))
            if len(sys.argv) > 1:  # after each sweep: a run cut short keeps what it measured
                with open(sys.argv[1], "w") as f:
                    json.dump(rows, f, indent=1)
    for (shape, kind), group in itertools.groupby(rows, key=lambda r: (r["shape"], r["kind"])):
        group = list(group)
        print(f"== {shape} {kind} (first row: the default configuration) ==")
        for r in group[:1] + sorted(group[1:], key=lambda r: r["ms"])[:6]:
            print(f"  rows {r['rows']:4} block_n {r['block_n']:4} warps {r['num_warps']} stages {r['num_stages']}: "
                  f"{r['ms']:8.3f} ms  {r['rate']:8.1f} {r['unit']}  ok={r['ok']}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
