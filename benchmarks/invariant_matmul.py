"""The batch-invariant matrix product against cuBLAS on Llama 1B and 8B layer shapes, bf16,
one GPU: time per call, TFLOP/s, and whether each M's rows equal M=8192's first rows bitwise.

    PYTHONPATH=. python benchmarks/invariant_matmul.py [out.json] [--sweep]

Prints a table; with a path, also writes it as JSON. --sweep also times candidate launch
configurations per shape (about a minute more), to choose engines.model.invariant_matmul's
table from measurements. Times are medians of triton.testing.do_bench, which empties the L2
cache before every call: weights come from memory, as in a forward pass.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
from dataclasses import asdict

import torch
import torch.nn.functional as F

# (model, layer, N, K) of the weight [N, K]; q/k/v and gate/up fused as in engines.model.llama
SHAPES = [
    ("1B", "qkv", 3072, 2048),
    ("1B", "o", 2048, 2048),
    ("1B", "gate_up", 16384, 2048),
    ("1B", "down", 2048, 8192),
    ("1B", "lm_head", 128256, 2048),
    ("8B", "qkv", 6144, 4096),
    ("8B", "o", 4096, 4096),
    ("8B", "gate_up", 28672, 4096),
    ("8B", "down", 4096, 14336),
    ("8B", "lm_head", 128256, 4096),
]
LAYERS = {"1B": 16, "8B": 32}
ROWS = [1, 16, 64, 128, 256, 1024, 8192]
SWEEP_ROWS = [1, 64, 256, 8192]


def candidates():
    from engines.model.invariant_matmul import MatmulConfig

    return {
        "128x256x64 w8 s3": MatmulConfig(128, 256, 64, num_warps=8, num_stages=3),
        "128x256x64 w8 s4": MatmulConfig(128, 256, 64, num_warps=8, num_stages=4),
        "128x128x64 w8 s4": MatmulConfig(128, 128, 64, num_warps=8, num_stages=4),
        "128x128x64 w4 s4": MatmulConfig(128, 128, 64, num_warps=4, num_stages=4),
        "128x64x64 w4 s6": MatmulConfig(128, 64, 64, num_warps=4, num_stages=6),
        "64x256x64 w4 s4": MatmulConfig(64, 256, 64, num_warps=4, num_stages=4),
        "64x128x128 w4 s4": MatmulConfig(64, 128, 128, num_warps=4, num_stages=4),
    }


def time_us(fn) -> float:
    from triton.testing import do_bench

    return do_bench(fn, warmup=10, rep=40, return_mode="median") * 1e3


def _operands(m: int, n: int, k: int, gen, device):
    """Random bf16 activations [m, k] and a weight [n, k] scaled like a trained layer's."""
    x = torch.randn(m, k, device=device, dtype=torch.bfloat16, generator=gen)
    return x, torch.randn(n, k, device=device, dtype=torch.bfloat16, generator=gen) / math.sqrt(k)


def measure(shapes=SHAPES, rows=ROWS, timer=time_us, device="cuda") -> list[dict]:
    """One record per (shape, M): both times, and bitwise row invariance of both products."""
    from engines.model.invariant_matmul import config_for, linear

    records = []
    gen = torch.Generator(device=device).manual_seed(0)
    for model, layer, n, k in shapes:
        x, w = _operands(max(rows), n, k, gen, device)
        full, full_cublas = linear(x, w), F.linear(x, w)
        for m in rows:
            xm = x[:m].clone()  # its own allocation, as a batch of m rows would have
            invariant_us = timer(functools.partial(linear, xm, w))
            cublas_us = timer(functools.partial(F.linear, xm, w))
            records.append(dict(
                model=model, layer=layer, n=n, k=k, m=m,
                cublas_us=cublas_us, invariant_us=invariant_us, ratio=invariant_us / cublas_us,
                invariant_tflops=2 * m * n * k / invariant_us / 1e6,
                cublas_tflops=2 * m * n * k / cublas_us / 1e6,
                invariant_ok=bool(torch.equal(linear(xm, w), full[:m])),
                cublas_ok=bool(torch.equal(F.linear(xm, w), full_cublas[:m])),
                config=asdict(config_for(n, k, torch.bfloat16, x.device)),
            ))
        del x, w, full, full_cublas
        torch.cuda.empty_cache()
    return records


def back_to_back_us(n: int = 2000, k: int = 2048, device="cuda") -> dict:
    """Wall time per call of many calls in a row on a small product: the host's cost of a
    launch (Python wrapper + launcher), which CUDA graphs hide at decode but not at prefill."""
    import time

    from engines.model.invariant_matmul import linear

    x = torch.randn(1, k, device=device, dtype=torch.bfloat16)
    w = torch.randn(k, k, device=device, dtype=torch.bfloat16)
    out = {}
    for name, fn in [("cublas_us", F.linear), ("invariant_us", linear)]:
        for _ in range(50):
            fn(x, w)
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            fn(x, w)
        torch.cuda.synchronize()
        out[name] = (time.perf_counter() - t) / n * 1e6
    return out


def forward_totals(records: list[dict]) -> list[dict]:
    """Matrix-product time of one forward of M tokens per model: every layer's four products
    times the layer count, plus the LM head over all M rows (an engine computes logits only
    for the rows it samples, so at prefill this overstates the head)."""
    totals = {}
    for r in records:
        key = (r["model"], r["m"])
        t = totals.setdefault(key, {"model": r["model"], "m": r["m"], "cublas_us": 0.0, "invariant_us": 0.0})
        times = 1 if r["layer"] == "lm_head" else LAYERS[r["model"]]
        t["cublas_us"] += times * r["cublas_us"]
        t["invariant_us"] += times * r["invariant_us"]
    for t in totals.values():
        t["ratio"] = t["invariant_us"] / t["cublas_us"]
    return list(totals.values())


def sweep(shapes=SHAPES, rows=SWEEP_ROWS, timer=time_us, device="cuda") -> list[dict]:
    """Each candidate configuration's time on each shape, as a ratio to cuBLAS."""
    from engines.model.invariant_matmul import linear

    out = []
    gen = torch.Generator(device=device).manual_seed(1)
    for model, layer, n, k in shapes:
        x, w = _operands(max(rows), n, k, gen, device)
        for m in rows:
            xm = x[:m].clone()
            cublas_us = timer(functools.partial(F.linear, xm, w))
            for name, config in candidates().items():
                us = timer(functools.partial(linear, xm, w, config=config))
                out.append(dict(model=model, layer=layer, n=n, k=k, m=m, config=name, us=us, ratio=us / cublas_us))
        del x, w
        torch.cuda.empty_cache()
    return out


def format_table(records: list[dict], totals: list[dict]) -> str:
    lines = [f"{'shape':<16} {'N':>6} {'K':>6} {'M':>5} {'cuBLAS us':>10} {'inv us':>9} {'ratio':>6} "
             f"{'inv TF/s':>8} {'cuBLAS TF/s':>11} {'inv ok':>6} {'cuBLAS ok':>9}"]
    for r in records:
        lines.append(
            f"{r['model'] + ' ' + r['layer']:<16} {r['n']:>6} {r['k']:>6} {r['m']:>5} {r['cublas_us']:>10.1f} "
            f"{r['invariant_us']:>9.1f} {r['ratio']:>6.2f} {r['invariant_tflops']:>8.1f} {r['cublas_tflops']:>11.1f} "
            f"{'yes' if r['invariant_ok'] else 'NO':>6} {'yes' if r['cublas_ok'] else 'no':>9}"
        )
    lines.append("")
    lines.append("matrix products of one forward (all layers + LM head over all M rows):")
    lines.append(f"{'model':<6} {'M':>5} {'cuBLAS ms':>10} {'inv ms':>9} {'ratio':>6}")
    for t in totals:
        lines.append(f"{t['model']:<6} {t['m']:>5} {t['cublas_us'] / 1e3:>10.3f} "
                     f"{t['invariant_us'] / 1e3:>9.3f} {t['ratio']:>6.2f}")
    return "\n".join(lines)


def format_sweep(results: list[dict]) -> str:
    """Per shape: each candidate's ratio to cuBLAS at each M, and its mean over the Ms."""
    names = list(dict.fromkeys(r["config"] for r in results))
    rows = sorted({r["m"] for r in results})
    by = {(r["model"], r["layer"], r["config"], r["m"]): r["ratio"] for r in results}
    lines = []
    for model, layer in dict.fromkeys((r["model"], r["layer"]) for r in results):
        lines.append(f"{model} {layer}: time / cuBLAS at M = {', '.join(map(str, rows))}; mean")
        best = min(names, key=lambda c: sum(by[model, layer, c, m] for m in rows))
        for c in names:
            ratios = [by[model, layer, c, m] for m in rows]
            mark = "  <- lowest mean" if c == best else ""
            mean = sum(ratios) / len(ratios)
            lines.append(f"  {c:<18} " + " ".join(f"{v:6.2f}" for v in ratios) + f"  {mean:6.2f}{mark}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", help="write the results as JSON to this path")
    parser.add_argument("--sweep", action="store_true", help="also time candidate launch configurations")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs a CUDA GPU (the timings and the bitwise check are the GPU's)", file=sys.stderr)
        return 2
    import triton

    records = measure()
    totals = forward_totals(records)
    launch = back_to_back_us()
    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, triton {triton.__version__}, bf16")
    print(format_table(records, totals))
    print(f"back to back, M=1, 1B o (host-bound where above the GPU time): cuBLAS {launch['cublas_us']:.1f} us/call, "
          f"invariant {launch['invariant_us']:.1f} us/call")
    result = dict(device=torch.cuda.get_device_name(), torch=torch.__version__, triton=triton.__version__,
                  dtype="bfloat16", records=records, forward_totals=totals, back_to_back=launch)
    if args.sweep:
        result["sweep"] = sweep()
        print()
        print(format_sweep(result["sweep"]))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
        print(f"wrote {args.out}")
    broken = [r for r in records if not r["invariant_ok"]]
    if broken:
        print(f"NOT batch-invariant: {len(broken)} (shape, M) pairs", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
