"""GPU: can a Triton matrix product whose tile is chosen by M beat cuBLAS on decode steps?

On the H200 (examples/h200-anchor-a/invariant-matmul.json) cuBLAS runs the 8B shape's narrow
layers well below both ceilings at decode sizes: at M = 64 the q/k/v and o products read
their weights at 1.9-2.2 TB/s (of 4.2), at M = 256 they reach 360-470 TFLOP/s (of 786), and
a decode step of ~250 requests spends ~6.7 ms in products whose bound is ~4.5 ms. This times,
for each 8B layer shape and M in {16, 32, 64, 128, 256}, cuBLAS and every candidate launch
configuration of engines.model.invariant_matmul's kernel (small row tiles, narrow column
tiles to put more programs on the SMs), each checked against cuBLAS within bf16 rounding,
and sums the best per shape into one decode step's products.

    PYTHONPATH=. python benchmarks/decode_matmul.py [out.json] [--libraries]

--libraries: cuBLAS against cuBLASLt only (torch.backends.cuda.preferred_blas_library), no
Triton candidates, at the decode sizes and at a full prefill step's M = 8192 (a minute).

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


def candidates(m: int) -> list:
    """Launch configurations worth trying at M rows: row tiles no taller than M needs."""
    from engines.model.invariant_matmul import MatmulConfig

    tall = [b for b in (16, 32, 64, 128) if b <= max(16, m)]
    return [
        MatmulConfig(bm, bn, bk, num_warps=w, num_stages=s, group_m=8)
        for bm, bn, bk, w, s in itertools.product(tall, (32, 64, 128, 256), (64, 128, 256), (4, 8), (3, 4, 5))
        if (bm + bn) * bk * s * 2 <= 200 * 1024  # shared memory of the H200's SM (227 KB)
        and (w == 4) == (bm * bn < 128 * 128)  # eight warps only for the largest tiles
    ]


def _with_blas(library: str, fn):
    """fn() with torch's matrix products sent to another BLAS library (cuBLASLt picks its
    kernels by its own heuristics), then back."""
    before = torch.backends.cuda.preferred_blas_library()
    torch.backends.cuda.preferred_blas_library(library)
    try:
        return fn()
    finally:
        torch.backends.cuda.preferred_blas_library(before)


def sweep(shapes=SHAPES, rows=ROWS, timer=time_us, device="cuda", make_candidates=candidates) -> list[dict]:
    """One record per (shape, M): cuBLAS's time and the best candidate's, with its config."""
    from engines.model.invariant_matmul import linear

    records = []
    gen = torch.Generator(device=device).manual_seed(0)
    for layer, n, k in shapes:
        w = torch.randn(n, k, device=device, dtype=torch.bfloat16, generator=gen) / math.sqrt(k)
        for m in rows:
            x = torch.randn(m, k, device=device, dtype=torch.bfloat16, generator=gen)
            expected = F.linear(x, w).float()
            cublas = timer(lambda: F.linear(x, w))  # noqa: B023 (timed at once)
            cublaslt = _with_blas("cublaslt", lambda: timer(lambda: F.linear(x, w)))  # noqa: B023
            best, best_us, failed = None, math.inf, 0
            for config in make_candidates(m):
                try:
                    out = linear(x, w, config=config).float()
                except Exception:  # noqa: BLE001 (a configuration that does not compile or fit)
                    failed += 1
                    continue
                if not torch.allclose(out, expected, atol=2e-2, rtol=2e-2):
                    failed += 1
                    continue
                us = timer(lambda: linear(x, w, config=config))  # noqa: B023
                if us < best_us:
                    best, best_us = config, us
            found = best is not None
            records.append(dict(layer=layer, n=n, k=k, m=m, cublas_us=cublas, cublaslt_us=cublaslt,
                                best_us=best_us if found else None, ratio=best_us / cublas if found else None,
                                best=asdict(best) if found else None, failed=failed,
                                weight_gb_s=n * k * 2 / cublas / 1e3, cublas_tflops=2 * m * n * k / cublas / 1e6))
    return records


def step_totals(records: list[dict]) -> list[dict]:
    """A decode step's products at each M: cuBLAS alone, and the faster of the two per shape."""
    out = []
    for m in sorted({r["m"] for r in records}):
        rs = [r for r in records if r["m"] == m]
        cublas = sum(PER_STEP[r["layer"]] * r["cublas_us"] for r in rs) / 1e3
        mixed = sum(PER_STEP[r["layer"]] * min(r["cublas_us"], r["best_us"] or math.inf) for r in rs) / 1e3
        out.append(dict(m=m, cublas_ms=cublas, best_ms=mixed, saving=1 - mixed / cublas))
    return out


def main() -> int:
    if not torch.cuda.is_available():
        print("needs a CUDA GPU", file=sys.stderr)
        return 2
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if "--libraries" in sys.argv:
        records = sweep(rows=ROWS + [8192], make_candidates=lambda m: [])
    else:
        records = sweep()
    totals = step_totals(records)
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, bf16, 8B shapes")
    print(f"{'layer':<8} {'M':>4} {'cuBLAS us':>10} {'GB/s':>6} {'TF/s':>5} {'Lt us':>6} {'best us':>8} {'ratio':>6}  best config")
    for r in records:
        b = r["best"]
        cfg = f"{b['block_m']}x{b['block_n']}x{b['block_k']} w{b['num_warps']} s{b['num_stages']}" if b else "-"
        print(f"{r['layer']:<8} {r['m']:>4} {r['cublas_us']:>10.1f} {r['weight_gb_s']:>6.0f} {r['cublas_tflops']:>5.0f} "
              f"{r['cublaslt_us']:>6.1f} {r['best_us'] or math.nan:>8.1f} {r['ratio'] or math.nan:>6.2f}  {cfg}")
    print("a decode step's products (32 layers + LM head):")
    for t in totals:
        print(f"  M {t['m']:>4}: cuBLAS {t['cublas_ms']:.3f} ms, with the faster per shape {t['best_ms']:.3f} ms "
              f"({100 * t['saving']:.1f}% less)")
    if args:
        with open(args[0], "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                       "records": records, "totals": totals}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
