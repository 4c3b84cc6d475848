"""GPU: can a Triton matrix product beat cuBLAS on the products of a decode step?

On the H200 cuBLAS runs the 8B shape's layers below both ceilings at decode sizes: at
M <= 64 it reads the q/k/v, o and down weights at 1.7-2.8 TB/s (of 4.2), at M = 256 the
narrow layers reach 360-470 TFLOP/s (of 786). This times, for each 8B layer shape and M in
{16, 32, 64, 128, 256}, cuBLAS, cuBLASLt, and the candidate launch configurations of two
Triton kernels, each checked against cuBLAS within bf16 rounding:

- triton: engines.model.invariant_matmul's kernel, one program per output tile (row tiles
  no taller than M needs, narrow column tiles to put more programs on the SMs);
- splitk: engines.model.splitk_matmul, K split into 2-8 ranges so that more programs read
  the weight at once (M <= 64), or so that the narrow layers' few large tiles fill the SMs
  (M = 128, 256).

It prints one row per (layer, M) and sums the fastest per shape into one decode step's
products (32 layers + LM head).

    PYTHONPATH=. python benchmarks/decode_matmul.py [out.json] [--libraries] [--splitk] [--table=FILE]

--libraries: cuBLAS against cuBLASLt only, at the decode sizes and at a full prefill
step's M = 8192 (a minute). --splitk: cuBLAS against the split-K kernel only (~5 minutes).
--table=FILE: write the split-K wins (more than 3% faster than cuBLAS) as a table for the
engine option matmul_table (engines/model/matmul_table.py).

Times are medians of triton.testing.do_bench (L2 emptied before each call: weights come from
memory, as in a forward pass).
"""

from __future__ import annotations

import itertools
import json
import math
import sys
from dataclasses import asdict

import torch
import torch.nn.functional as F

from benchmarks import invariant_matmul
from benchmarks.invariant_matmul import time_us

# (layer, N, K) of the 8B shape's weights [N, K], and how many of each a decode step runs
SHAPES = [(layer, n, k) for model, layer, n, k in invariant_matmul.SHAPES if model == "8B"]
PER_STEP = {layer: 1 if layer == "lm_head" else invariant_matmul.LAYERS["8B"] for layer, _, _ in SHAPES}
ROWS = [16, 32, 64, 128, 256]
SMEM = 200 * 1024  # shared memory a program may use on the H200 (227 KB an SM)


def triton_candidates(m: int, k: int) -> dict:
    """label -> (product(x, w), config): the invariant kernel's configurations worth trying at M rows."""
    from engines.model.invariant_matmul import MatmulConfig, linear

    tall = [b for b in (16, 32, 64, 128) if b <= max(16, m)]
    configs = [
        MatmulConfig(bm, bn, bk, num_warps=w, num_stages=s, group_m=8)
        for bm, bn, bk, w, s in itertools.product(tall, (32, 64, 128, 256), (64, 128, 256), (4, 8), (3, 4, 5))
        if (bm + bn) * bk * s * 2 <= SMEM
        and (w == 4) == (bm * bn < 128 * 128)  # eight warps only for the largest tiles
    ]
    return {f"{c.block_m}x{c.block_n}x{c.block_k} w{c.num_warps} s{c.num_stages}":
            ((lambda x, w, c=c: linear(x, w, config=c)), c) for c in configs}


def splitk_candidates(m: int, k: int) -> dict:
    """label -> (product(x, w), config): split-K configurations at M rows. Up to 64 rows one
    row tile covers M and the product is a read of the weight: many narrow programs. At 128
    and 256 rows the narrow layers have too few output tiles for 132 SMs (cuBLAS runs them at
    360-470 TFLOP/s): a few splits of large tiles."""
    from engines.model.splitk_matmul import SplitKConfig, linear

    if m <= 64:
        bm = max(16, m)
        shapes = itertools.product((bm,), (32, 64, 128), (64, 128, 256), (2, 3, 4, 6, 8), (4,), (3, 4))
    else:
        shapes = itertools.product((64, 128), (128, 256), (64,), (2, 3, 4), (4, 8), (3, 4))
    configs = [
        SplitKConfig(bm, bn, bk, split_k=sk, num_warps=w, num_stages=s)
        for bm, bn, bk, sk, w, s in shapes
        if (bm + bn) * bk * s * 2 <= SMEM and k // sk >= bk  # every split at least one K tile
        and (w == 8) == (bm * bn >= 128 * 128)  # eight warps for the largest tiles only
    ]
    return {f"{c.block_m}x{c.block_n}x{c.block_k} k/{c.split_k} s{c.num_stages}":
            ((lambda x, w, c=c: linear(x, w, config=c)), c) for c in configs}


FAMILIES = {"triton": triton_candidates, "splitk": splitk_candidates}


def _with_blas(library: str, fn):
    """fn() with torch's matrix products sent to another BLAS library (cuBLASLt picks its
    kernels by its own heuristics), then back."""
    before = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library(library)
    try:
        return fn()
    finally:
        torch.backends.cuda.preferred_blas_library(before)


def sweep(shapes=SHAPES, rows=ROWS, timer=time_us, device="cuda", families=FAMILIES, cublaslt=True) -> list[dict]:
    """One record per (shape, M): cuBLAS's time (and cuBLASLt's), and per kernel family the
    fastest candidate that agrees with cuBLAS, its label, and how many failed or disagreed."""
    records = []
    gen = torch.Generator(device=device).manual_seed(0)
    for layer, n, k in shapes:
        w = torch.randn(n, k, device=device, dtype=torch.bfloat16, generator=gen) / math.sqrt(k)
        for m in rows:
            x = torch.randn(m, k, device=device, dtype=torch.bfloat16, generator=gen)
            expected = F.linear(x, w).float()
            cublas = timer(lambda: F.linear(x, w))  # noqa: B023 (timed at once)
            record = dict(layer=layer, n=n, k=k, m=m, cublas_us=cublas,
                          cublaslt_us=_with_blas("cublaslt", lambda: timer(lambda: F.linear(x, w))) if cublaslt else None,  # noqa: B023
                          weight_gb_s=n * k * 2 / cublas / 1e3, cublas_tflops=2 * m * n * k / cublas / 1e6)
            for family, make in families.items():
                best, best_us, best_config, failed = None, math.inf, None, 0
                for label, (product, config) in make(m, k).items():
                    try:
                        ok = torch.allclose(product(x, w).float(), expected, atol=2e-2, rtol=2e-2)
                    except Exception:  # noqa: BLE001 (a configuration that does not compile or fit)
                        ok = False
                    if not ok:
                        failed += 1
                        continue
                    us = timer(lambda: product(x, w))  # noqa: B023
                    if us < best_us:
                        best, best_us, best_config = label, us, config
                record[family] = None if best is None else dict(
                    us=best_us, ratio=best_us / cublas, config=best, launch=asdict(best_config))
                record[f"{family}_failed"] = failed
            records.append(record)
    return records


def step_totals(records: list[dict], families=tuple(FAMILIES)) -> list[dict]:
    """A decode step's products at each M: cuBLAS alone, and the fastest per shape of cuBLAS
    and the kernels measured."""
    out = []
    for m in sorted({r["m"] for r in records}):
        rs = [r for r in records if r["m"] == m]

        def fastest(r):
            return min([r["cublas_us"]] + [r[f]["us"] for f in families if r.get(f)])

        cublas = sum(PER_STEP[r["layer"]] * r["cublas_us"] for r in rs) / 1e3
        best = sum(PER_STEP[r["layer"]] * fastest(r) for r in rs) / 1e3
        out.append(dict(m=m, cublas_ms=cublas, best_ms=best, saving=1 - best / cublas))
    return out


def table_entries(records: list[dict], margin: float = 0.03) -> list[dict]:
    """engines.model.matmul_table entries: per weight shape, the row buckets from the smallest
    M up where split-K beat cuBLAS by more than `margin` (do_bench's run-to-run noise is
    ~1-2%), stopping at the first M where it did not. An entry covers the M up to its own
    above the previous one, so a bucket left out would fall to the next larger entry: hence
    no gaps. (us and cublas_us are for the reader; the engine reads the rest.)"""
    entries = []
    for n, k in dict.fromkeys((r["n"], r["k"]) for r in records):
        for r in sorted((r for r in records if (r["n"], r["k"]) == (n, k)), key=lambda r: r["m"]):
            if not (r.get("splitk") and r["splitk"]["ratio"] < 1 - margin):
                break
            entries.append(dict(n=n, k=k, dtype="bfloat16", max_m=r["m"], config=r["splitk"]["launch"],
                                us=r["splitk"]["us"], cublas_us=r["cublas_us"]))
    return entries


def main() -> int:
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--libraries" in sys.argv:
        records = sweep(rows=ROWS + [8192], families={})
    elif "--splitk" in sys.argv:
        records = sweep(families={"splitk": splitk_candidates}, cublaslt=False)
    else:
        records = sweep()
    totals = step_totals(records)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, 8B shapes; times in us")
    names = [f for f in FAMILIES if any(f in r for r in records)]
    print(f"{'layer':<8} {'M':>4} {'cuBLAS':>7} {'GB/s':>5} {'TF/s':>4} {'Lt':>6}"
          + "".join(f" {f:>7} {'ratio':>5} {'config':<24}" for f in names))
    for r in records:
        line = (f"{r['layer']:<8} {r['m']:>4} {r['cublas_us']:>7.1f} {r['weight_gb_s']:>5.0f} {r['cublas_tflops']:>4.0f} "
                f"{r['cublaslt_us'] or math.nan:>6.1f}")
        for f in names:
            b = r.get(f)
            line += f" {b['us']:>7.1f} {b['ratio']:>5.2f} {b['config']:<24}" if b else f" {'-':>7} {'-':>5} {'-':<24}"
        print(line)
    print("a decode step's products (32 layers + LM head):")
    for t in totals:
        print(f"  M {t['m']:>4}: cuBLAS {t['cublas_ms']:.3f} ms, with the faster per shape {t['best_ms']:.3f} ms "
              f"({100 * t['saving']:.1f}% less)")
    if args:
        with open(args[0], "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "records": records, "totals": totals}, f, indent=1)
    table = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--table=")), None)
    if table:
        entries = table_entries(records)
        with open(table, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "entries": entries}, f,
                      indent=1)
        print(f"{table}: {len(entries)} products where split-K beat cuBLAS by more than 3% "
              "(engine option matmul_table)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
