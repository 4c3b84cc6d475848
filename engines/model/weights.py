"""Model weights: random from a preset, or read from a local Hugging Face checkpoint.

The result is a transformers config plus a state dict in transformers' own parameter names,
so the in-repo forward and the transformers peers load exactly the same tensors.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoConfig, PretrainedConfig

from engines.model.presets import PRESETS, preset_config
from engines.request import ConfigError

SUPPORTED_TYPES = ("llama", "mistral", "qwen2", "qwen3")

DTYPES = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
}


@dataclass
class ModelWeights:
    name: str  # preset name, or the checkpoint directory
    path: str | None  # checkpoint directory, None for presets
    config: PretrainedConfig
    state_dict: dict[str, torch.Tensor]  # transformers names; tied lm_head omitted
    dtype: torch.dtype
    device: torch.device
    seed: int

    @property
    def num_parameters(self) -> int:
        return sum(t.numel() for t in self.state_dict.values())

    def describe(self) -> dict:
        return {
            "name": self.name,
            "path": self.path,
            "model_type": self.config.model_type,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": str(self.device),
            "parameters": self.num_parameters,
            "seed": self.seed if self.path is None else None,
            "config": self.config.to_dict(),
        }


def default_device() -> torch.device:
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def resolve_dtype(dtype: str | torch.dtype | None, device: torch.device) -> torch.dtype:
    """float32 on CPU and bfloat16 on GPU unless asked otherwise."""
    if dtype is None:
        return torch.float32 if device.type == "cpu" else torch.bfloat16
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise ConfigError(f"unknown dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def parameter_shapes(config: PretrainedConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter of the transformers model for this config, built on the meta device."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    return {name: tuple(p.shape) for name, p in model.named_parameters()}


def _random_tensor(name: str, shape, std: float, seed: int, dtype, device) -> torch.Tensor:
    # One generator per tensor, seeded by (seed, name): the weights do not depend on the
    # order tensors are made in, so every engine built from (preset, seed) gets the same ones.
    gen = torch.Generator(device=device)
    gen.manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    out = torch.empty(shape, dtype=dtype, device=device)
    # Fill in float32 row blocks: randn straight into bf16 is not supported everywhere, and a
    # float32 copy of a whole 128k x 4k embedding would double peak memory.
    flat = out.view(shape[0], -1) if len(shape) > 1 else out.view(1, -1)
    rows = max(1, (1 << 24) // max(1, flat.shape[1]))
    for start in range(0, flat.shape[0], rows):
        block = torch.randn(
            (min(rows, flat.shape[0] - start), flat.shape[1]), generator=gen, device=device
        )
        flat[start : start + block.shape[0]] = block * std
    return out


def random_weights(config: PretrainedConfig, seed: int, dtype, device) -> dict[str, torch.Tensor]:
    """Random weights the way serving engines benchmark with dummy weights: normal(0, std)
    for matrices and biases, 1 + normal(0, std) for norm scales (not exactly 1, so a norm
    applied in the wrong place changes the output and the tests see it)."""
    std = getattr(config, "initializer_range", 0.02)
    weights = {}
    for name, shape in parameter_shapes(config).items():
        t = _random_tensor(name, shape, std, seed, dtype, device)
        if "norm" in name:
            t += 1.0
        weights[name] = t
    return weights


def _checkpoint_weights(path: Path, dtype, device) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"{path}: no *.safetensors files (only safetensors checkpoints are read)")
    weights = {}
    for file in files:
        with safe_open(str(file), framework="pt", device=str(device)) as f:
            for key in f.keys():
                weights[key] = f.get_tensor(key).to(dtype)
    return weights


def _checkpoint_config(path: Path) -> PretrainedConfig:
    config_file = path / "config.json"
    if not config_file.is_file():
        raise ConfigError(f"{path}: not a Hugging Face checkpoint directory (no config.json)")
    try:
        json.loads(config_file.read_text())
    except json.JSONDecodeError as e:
        raise ConfigError(f"{config_file}: invalid JSON at line {e.lineno}: {e.msg}") from e
    return AutoConfig.from_pretrained(str(path), local_files_only=True)


def load_weights(
    model: str,
    *,
    device: str | torch.device | None = None,
    dtype: str | torch.dtype | None = None,
    seed: int = 0,
) -> ModelWeights:
    """`model` is a preset name (random weights from `seed`) or a local checkpoint directory."""
    device = torch.device(device) if device is not None else default_device()
    dtype = resolve_dtype(dtype, device)
    path = Path(model).expanduser()
    if model in PRESETS:
        config = preset_config(model)
        weights = random_weights(config, seed, dtype, device)
        checkpoint = None
    elif path.is_dir():
        config = _checkpoint_config(path)
        checkpoint = str(path)
        weights = None
    else:
        raise ConfigError(
            f"model {model!r} is neither a preset ({', '.join(PRESETS)}) nor a local "
            "checkpoint directory"
        )
    if config.model_type not in SUPPORTED_TYPES:
        raise ConfigError(
            f"model type {config.model_type!r} is not supported; supported: {', '.join(SUPPORTED_TYPES)}"
        )
    if weights is None:
        weights = _checkpoint_weights(path, dtype, device)
    if getattr(config, "tie_word_embeddings", False):
        weights.pop("lm_head.weight", None)
    return ModelWeights(model, checkpoint, config, weights, dtype, device, seed)
