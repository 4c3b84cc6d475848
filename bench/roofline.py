"""The roofline: a lower bound on how fast any engine could run an offline workload here.

For a model shape, the workload's prompt and output lengths, and the device's measured
ceilings (memory bandwidth BW, matrix rate F): T_min = max(FLOPs / F, Bytes / BW), and
roofline efficiency = T_min / T_measured (METRICS.md). Exact counting, per request with
prompt length p and output length o:

  The prompt's forward (prefill) yields the first output token, then o - 1 decode steps
  each feed one token back, so the model consumes p + o - 1 tokens: the last output token
  is sampled but never fed. Decode step j (1..o-1) feeds position p + j - 1.

  FLOPs = 2 x (non-embedding params + LM head) x (p + o)
        + 4 x layers x heads x head_dim x (p (p + 1) / 2 + sum_j (p + j))
    (causal pairs count each query with itself; decode step j's query sees p + j keys)

  The matrix term counts p + o tokens, as METRICS.md writes it, although p + o - 1 pass
  through the weights: one token a request too many (256 of 204,139 on anchor-a, 0.13%).
  METRICS.md's published 3.90 s for the 8B shape needs it (p + o - 1 gives 3.892 s), so
  this stays the definition; everything else is counted exactly.

  Bytes = weight bytes x max(o)                   one prefill + max(o) - 1 decode steps,
                                                  everything batched together
        + KV bytes per token x sum_j (p + j - 1)  each decode step reads its cached context
        + KV bytes per token x (p + o - 1)        every consumed token's K/V written once

  Weight bytes are the matrices every token multiplies: the non-embedding parameters and
  the LM head (a tied model's embedding is the LM head, counted once); the embedding
  lookup reads only a row per token and is left out, as are activations.

With these counts anchor-a gives 3.90 s (8B, compute-bound) and 0.66 s (1B, memory-bound) on
an H200, as METRICS.md states (tests/bench/test_roofline.py).

The bound of an engine's own steps (`steps_bound`) asks a narrower question: how fast could
the steps this engine chose have run? Each step k is bounded alone, counted as above, and the
bounds add up:

  T_steps = sum_k max(FLOPs_k / F, Bytes_k / BW)

  FLOPs_k = 2 x (non-embedding params + LM head) x positions computed (prompt, decode, pads,
            wasted rows) + 4 x layers x heads x head_dim x attention pairs
  Bytes_k = weights read once + KV bytes per token x (context held before the step
            + positions written)

Steps run one after the other, so one step's idle compute cannot absorb another's memory
traffic: a draining batch's last steps read every weight for a few tokens. T_min / T_steps
(schedule efficiency) is what the schedule gives away against the whole-workload bound, and
T_steps / T_measured (efficiency) how close the kernels and the host come to the schedule
they were given; the two multiply to the roofline efficiency. The LM head is counted for every
position, as T_min counts it (METRICS.md), so that a schedule is never credited with more
than the workload bound allows: T_steps >= T_min, up to T_min's one token a request too many,
unless prefix-cache hits skip prompt tokens the workload bound counts. The engines compute the
LM head only for the rows they sample, so their in-step efficiency could in principle pass 1
by that much.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from bench.ceilings import Ceilings, measure_ceilings
from bench.records import POSITION_COLUMNS

__all__ = ["Ceilings", "ModelShape", "dtype_bytes", "measure_ceilings", "roofline_bound", "step_bounds",
           "steps_bound", "summed_bounds", "with_efficiency"]

_DTYPE_BYTES = {
    "float64": 8, "double": 8, "fp64": 8,
    "float32": 4, "float": 4, "fp32": 4,
    "bfloat16": 2, "bf16": 2, "float16": 2, "half": 2, "fp16": 2,
    "float8_e4m3fn": 1, "float8_e5m2": 1, "fp8": 1, "int8": 1,
}


def dtype_bytes(dtype) -> int:
    """Bytes per element of a torch dtype or a dtype name ("bfloat16", "bf16", "torch.float16")."""
    if hasattr(dtype, "itemsize"):
        return int(dtype.itemsize)
    name = str(dtype).removeprefix("torch.").lower()
    if name not in _DTYPE_BYTES:
        raise ValueError(f"dtype {dtype!r}: unknown, expected one of {', '.join(sorted(_DTYPE_BYTES))}")
    return _DTYPE_BYTES[name]


def _config_get(config, key: str, default=None):
    if isinstance(config, dict):
        value = config.get(key, default)
    else:
        value = getattr(config, key, default)
    return default if value is None else value


@dataclass(frozen=True)
class ModelShape:
    """The shape of a Llama-family decoder (Llama 2/3, Mistral, Qwen2/2.5, Qwen3)."""

    num_layers: int
    hidden_size: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    qkv_bias: bool = False  # Qwen2
    qk_norm: bool = False  # Qwen3: RMSNorm over each head's q and k

    def __post_init__(self):
        for name in ("num_layers", "hidden_size", "num_heads", "num_kv_heads", "head_dim",
                     "intermediate_size", "vocab_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value > 0):
                raise ValueError(f"ModelShape.{name} = {value!r}, expected a positive integer")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"ModelShape: num_heads {self.num_heads} is not a multiple of num_kv_heads "
                f"{self.num_kv_heads}"
            )

    @classmethod
    def from_config(cls, config) -> ModelShape:
        """From a transformers config object or its dict (config.json)."""
        def need(key):
            value = _config_get(config, key)
            if value is None:
                raise ValueError(f"model config: missing {key!r}, needed for the roofline")
            return value

        hidden, heads = int(need("hidden_size")), int(need("num_attention_heads"))
        model_type = _config_get(config, "model_type", "")
        return cls(
            num_layers=int(need("num_hidden_layers")),
            hidden_size=hidden,
            num_heads=heads,
            num_kv_heads=int(_config_get(config, "num_key_value_heads", heads)),
            head_dim=int(_config_get(config, "head_dim", hidden // heads)),
            intermediate_size=int(need("intermediate_size")),
            vocab_size=int(need("vocab_size")),
            tie_word_embeddings=bool(_config_get(config, "tie_word_embeddings", False)),
            qkv_bias=bool(_config_get(config, "attention_bias", model_type == "qwen2")),
            qk_norm=model_type == "qwen3",
        )

    @property
    def layer_params(self) -> int:
        h, d = self.hidden_size, self.head_dim
        q, kv = self.num_heads * d, self.num_kv_heads * d
        attention = h * q + 2 * h * kv + q * h + (q + 2 * kv if self.qkv_bias else 0)
        mlp = 3 * h * self.intermediate_size  # gate, up, down
        norms = 2 * h + (2 * d if self.qk_norm else 0)
        return attention + mlp + norms

    @property
    def non_embedding_params(self) -> int:
        """Decoder layers and the final norm."""
        return self.num_layers * self.layer_params + self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def embedding_params(self) -> int:
        """The input embedding; 0 when tied (it is the LM head, counted there)."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    @property
    def total_params(self) -> int:
        return self.non_embedding_params + self.lm_head_params + self.embedding_params

    @property
    def matmul_params(self) -> int:
        """Parameters every token multiplies: non-embedding parameters + LM head."""
        return self.non_embedding_params + self.lm_head_params

    @property
    def kv_elements_per_token(self) -> int:
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim  # K and V


def _lengths(name: str, values) -> list[int]:
    out = [int(v) for v in values]
    bad = [v for v in out if v < 1]
    if bad:
        raise ValueError(f"roofline: {name} contains {bad[0]}, expected lengths >= 1")
    return out


def roofline_bound(shape: ModelShape, dtype_bytes: int, prompt_lens, output_lens,
                   ceilings: Ceilings) -> dict:
    """T_min for an offline workload (module docstring), as summary.json's `roofline` block
    less efficiency: {t_min_s, bound, flops, bytes, ceilings}."""
    prompts, outputs = _lengths("prompt_lens", prompt_lens), _lengths("output_lens", output_lens)
    if len(prompts) != len(outputs) or not prompts:
        raise ValueError(
            f"roofline: {len(prompts)} prompt lengths and {len(outputs)} output lengths, "
            f"expected the same number, at least one"
        )
    consumed = attended = kv_read = 0
    for p, o in zip(prompts, outputs):
        steps = o - 1
        consumed += p + steps
        attended += p * (p + 1) // 2 + steps * p + steps * (steps + 1) // 2  # + sum_j (p + j)
        kv_read += steps * p + steps * (steps - 1) // 2  # sum_j (p + j - 1)
    flops = (2 * shape.matmul_params * (sum(prompts) + sum(outputs))
             + 4 * shape.num_layers * shape.num_heads * shape.head_dim * attended)
    kv_token_bytes = shape.kv_elements_per_token * dtype_bytes
    nbytes = (shape.matmul_params * dtype_bytes * max(outputs)
              + kv_token_bytes * kv_read + kv_token_bytes * consumed)
    t_compute, t_memory = flops / ceilings.flops_per_s, nbytes / ceilings.bw_bytes_per_s
    return {
        "t_min_s": max(t_compute, t_memory),
        "bound": "compute" if t_compute >= t_memory else "memory",
        "flops": flops,
        "bytes": nbytes,
        "ceilings": ceilings.to_dict(),
    }


# the step counters (engines.api.StepStats) the bound of an engine's own steps reads
STEPS_BOUND_COLUMNS = (*POSITION_COLUMNS, "context_tokens", "attention_pairs")


class StepBounds(NamedTuple):
    """Per step (0 for a step that computed nothing): its bound in seconds, whether it is
    compute-bound, its FLOPs and its bytes."""

    seconds: np.ndarray
    compute_bound: np.ndarray
    flops: np.ndarray
    bytes: np.ndarray


def step_bounds(shape: ModelShape, dtype_bytes: int, steps, ceilings: Ceilings) -> StepBounds | None:
    """Each step's own bound (module docstring) from a steps frame (steps.parquet). None when
    the steps do not count their attention: peers, older files, an engine that computed
    nothing."""
    if any(c not in steps.columns or steps[c].isna().any() for c in STEPS_BOUND_COLUMNS):
        return None

    def column(name: str) -> np.ndarray:
        return steps[name].to_numpy(dtype=np.float64)  # float: FLOPs overflow int64 at scale

    positions = sum(column(c) for c in POSITION_COLUMNS)
    pairs, computed = column("attention_pairs"), positions > 0
    if not computed.any() or not pairs[computed].any():
        return None
    flops = (2 * shape.matmul_params * positions
             + 4 * shape.num_layers * shape.num_heads * shape.head_dim * pairs)
    kv_token_bytes = shape.kv_elements_per_token * dtype_bytes
    nbytes = (shape.matmul_params * dtype_bytes * computed
              + kv_token_bytes * (column("context_tokens") + positions))
    t_compute, t_memory = flops / ceilings.flops_per_s, nbytes / ceilings.bw_bytes_per_s
    return StepBounds(np.maximum(t_compute, t_memory), computed & (t_compute >= t_memory), flops, nbytes)


def steps_bound(shape: ModelShape, dtype_bytes: int, steps, ceilings: Ceilings) -> dict | None:
    """The bound of an engine's own steps, summed over them (summed_bounds); None where
    step_bounds is."""
    bounds = step_bounds(shape, dtype_bytes, steps, ceilings)
    return None if bounds is None else summed_bounds(bounds, steps)


def summed_bounds(bounds: StepBounds, steps) -> dict:
    """{t_min_s, steps, compute_bound_steps, flops, bytes, device_s} over a steps frame's
    step_bounds. device_s: the steps' time on the device, summed (StepStats.device_ns), when
    every step that computed has one; else None (a CPU)."""
    computed = bounds.seconds > 0  # a step that computed reads its weights: its bound is > 0
    device = steps["device_ns"][computed] if "device_ns" in steps.columns else None
    return {
        "t_min_s": float(bounds.seconds.sum()),
        "steps": int(computed.sum()),
        "compute_bound_steps": int(bounds.compute_bound.sum()),
        "flops": float(bounds.flops.sum()),
        "bytes": float(bounds.bytes.sum()),
        "device_s": float(device.sum()) / 1e9 if device is not None and device.notna().all() else None,
    }


def with_efficiency(bound: dict, t_measured_s: float | None) -> dict:
    """The bound with efficiency = t_min_s / t_measured_s added (None when there is no
    measured time), for the whole workload and, when present, for the engine's own steps.
    Higher is better; 1.0 would be a perfect engine."""
    ok = t_measured_s is not None and math.isfinite(t_measured_s) and t_measured_s > 0

    def efficiency(t_min_s: float) -> float | None:
        return t_min_s / t_measured_s if ok else None

    out = {**bound, "efficiency": efficiency(bound["t_min_s"])}
    if bound.get("steps_bound"):
        own = bound["steps_bound"]
        out["steps_bound"] = {**own, "efficiency": efficiency(own["t_min_s"]),
                              "schedule_efficiency": bound["t_min_s"] / own["t_min_s"]}
    return out
