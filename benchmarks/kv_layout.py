"""GPU: does the decode attention read K/V faster from head-major pages?

The cache is [blocks, page, kv_heads, head_dim] per layer (token-major, "NHD"): one KV head's
16 tokens of a page are 16 rows of head_dim values, kv_heads * head_dim apart. Head-major
pages ("HND", [blocks, kv_heads, page, head_dim]) put them in one contiguous run instead. The
Triton kernel takes the cache through its strides, so both layouts run the same kernel: the
head-major one as a permuted view. This times one decode launch per layout over 256
sequences of anchor-a's contexts (the tile plan made once, outside the timing, K/V already in
the cache), checks the outputs agree, and prints GB/s of K/V read.

    PYTHONPATH=. python benchmarks/kv_layout.py [out.json]
"""

from __future__ import annotations

import json
import random
import sys

import torch

from benchmarks.attention_configs import HEADS, KV_HEADS, SHAPES, batch
from engines.attention.triton_paged import DECODE, TileConfig, TritonPagedAttention


def head_major(cache: torch.Tensor) -> torch.Tensor:
    """The same values in head-major pages, seen through the token-major shape."""
    return cache.permute(0, 2, 1, 3).contiguous().permute(0, 2, 1, 3)


def main() -> int:
    from triton.testing import do_bench

    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    device = torch.device("cuda")
    rng = random.Random(0)
    contexts = [rng.randint(64, 1024) + rng.randint(0, 511) for _ in range(256)]
    configs = [DECODE] + [TileConfig(16, n, w, s) for n, w, s in ((64, 4, 3), (128, 4, 3), (64, 4, 4), (32, 4, 4))]
    rows = []
    for shape, head_dim in SHAPES.items():
        q, kv, k_cache, v_cache, meta = batch([1] * len(contexts), contexts, head_dim, device)
        layouts = {"NHD": (k_cache, v_cache), "HND": (head_major(k_cache), head_major(v_cache))}
        nbytes = 2 * KV_HEADS * head_dim * 2 * sum(contexts)
        for config in configs:
            attention = TritonPagedAttention(head_dim**-0.5, HEADS, KV_HEADS, head_dim, decode=config)
            plan = attention.prepare(meta)
            outs = {}
            for layout, (kc, vc) in layouts.items():
                def launch():
                    return attention(q, kv, kv, kc, vc, meta, plan, kv_written=True)  # noqa: B023

                outs[layout] = launch()
                ms = do_bench(launch, warmup=20, rep=100, return_mode="median")
                rows.append(dict(shape=shape, layout=layout, block_n=config.block_n, num_warps=config.num_warps,
                                 num_stages=config.num_stages, ms=ms, gb_s=nbytes / ms / 1e6))
            same = torch.equal(outs["NHD"], outs["HND"])
            for r in rows[-2:]:
                r["equal"] = same
    print(f"{torch.cuda.get_device_name()}: decode attention, 256 sequences, bf16, kernel only")
    for r in rows:
        print(f"{r['shape']:>3} {r['layout']} block_n {r['block_n']:>3} w{r['num_warps']} s{r['num_stages']}: "
              f"{1e3 * r['ms']:7.1f} us {r['gb_s']:7.0f} GB/s  equal={r['equal']}")
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            json.dump(rows, f, indent=1)
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
