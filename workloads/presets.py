"""Named workloads: the visible mapping from preset name to spec, one line of description each.

Sizes are for the `tiny` model (vocabulary 2048, context 2048) on 2 CPU cores, except anchor-a,
which is fixed by METRICS.md. Trace files live in workloads/data/ (see its README.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    description: str
    spec: dict  # WorkloadSpec keys


DEFAULT_PRESET = "quick"

PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "64 requests at t=0, prompts uniform 16..256, outputs uniform 8..128 tokens: seconds on "
        "tiny; varied lengths are what padding and the batch barrier waste (the default)",
        {"source": "synthetic", "num_requests": 64, "prompt": "uniform(16,256)",
         "output": "uniform(8,128)", "arrival": "offline"},
    ),
    "anchor-a": Preset(
        "METRICS.md's fixed cross-tool workload: 256 requests at t=0, 138,199 prompt and 65,940 "
        "output tokens, ids up to 127,999 (needs a vocabulary >= 128,000)",
        {"source": "anchor-a"},
    ),
    "long-tail": Preset(
        "96 requests at t=0, 90% of outputs 4..32 tokens and 10% 192..384: a static batch waits "
        "for its longest request, continuous batching refills the freed slots",
        {"source": "synthetic", "num_requests": 96, "prompt": "uniform(16,256)",
         "output": "mix(0.9*uniform(4,32),0.1*uniform(192,384))", "arrival": "offline"},
    ),
    "azure-code": Preset(
        "Azure 2023 code trace: first 200 requests, 4x faster (about 50 s, very bursty), "
        "prompts scaled by 1/4 to fit a 2k context",
        {"source": "azure-trace", "path": "azure2023_code.csv", "limit": 200, "speedup": 4.0,
         "prompt_scale": 0.25},
    ),
    "burstgpt": Preset(
        "BurstGPT: 128 requests from 28,000 s into the trace (its busy part), 100x faster "
        "(about 60 s); failed requests dropped",
        {"source": "burstgpt-trace", "path": "burstgpt1_head400.csv", "start_s": 28000.0,
         "limit": 128, "speedup": 100.0},
    ),
    "mooncake": Preset(
        "Mooncake synthetic trace: first 128 requests in real time (about 37 s), prompts and "
        "their hash blocks scaled by 1/16 (32-token blocks) so prefix sharing survives on a 2k context",
        {"source": "mooncake-trace", "path": "mooncake_synthetic_head400.jsonl", "limit": 128,
         "prompt_scale": 0.0625},
    ),
    "sharegpt": Preset(
        "ShareGPT conversation lengths (prompt and output drawn jointly), 64 requests, Poisson "
        "2 req/s, from the rows that fit the context",
        {"source": "empirical", "path": "sharegpt_lengths.csv", "num_requests": 64,
         "arrival": "poisson(2)", "fit_context": "drop"},
    ),
}


def list_presets() -> dict[str, str]:
    """Preset name -> one-line description."""
    return {name: p.description for name, p in PRESETS.items()}
