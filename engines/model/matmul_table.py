"""Which matrix products of the forward run the split-K kernel instead of cuBLAS: a table of
measured wins, read from JSON, consulted per product by (N, K, dtype) and M.

The table is what `benchmarks/decode_matmul.py --splitk --table FILE` writes on a GPU: for
each weight shape and row bucket where the split-K kernel beat cuBLAS there, its launch
configuration. A product runs split-K only where the table has an entry for its weight shape
and dtype and a bucket holding its M; everything else stays with F.linear. The format:

    {"device": "NVIDIA H200", "entries": [
        {"n": 6144, "k": 4096, "dtype": "bfloat16", "max_m": 16,
         "config": {"block_m": 16, "block_n": 64, "block_k": 256, "split_k": 4,
                    "num_warps": 4, "num_stages": 3}}, ...]}

An entry covers M up to its max_m and above the next smaller max_m of the same shape.
"""

from __future__ import annotations

import json
from bisect import bisect_left
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn.functional as F

from engines.request import ConfigError

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


class MatmulTable:
    def __init__(self, entries: dict[tuple[int, int, torch.dtype], list[tuple[int, object]]], source: str = ""):
        # (n, k, dtype) -> [(max_m, config)] sorted by max_m
        self.entries = {key: sorted(rows, key=lambda r: r[0]) for key, rows in entries.items()}
        self.source = source

    def config_for(self, n: int, k: int, dtype: torch.dtype, m: int):
        """The split-K configuration for a product of M rows, or None (cuBLAS)."""
        rows = self.entries.get((n, k, dtype))
        if not rows:
            return None
        i = bisect_left([max_m for max_m, _ in rows], m)
        return rows[i][1] if i < len(rows) else None

    def __len__(self) -> int:
        return sum(len(rows) for rows in self.entries.values())

    def linear(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """F.linear, or the split-K kernel where the table has this product."""
        n, k = weight.shape
        config = self.config_for(n, k, x.dtype, x.numel() // max(k, 1)) if x.is_cuda or _interpreting() else None
        if config is None:
            return F.linear(x, weight, bias)
        from engines.model import splitk_matmul

        return splitk_matmul.linear(x, weight, bias, config=config)


def _interpreting() -> bool:
    """Triton's CPU interpreter runs the kernel on CPU tensors (the CPU tests)."""
    try:
        from engines.model.invariant_matmul import interpreting
    except ImportError:  # no triton: nothing runs the kernel off the GPU
        return False
    return interpreting()


def load_table(path: str | Path) -> MatmulTable:
    """Read and check a table file; every problem names the file, the entry and the field."""
    try:
        from engines.model.splitk_matmul import SplitKConfig
    except ImportError as e:
        raise ConfigError(f"matmul_table {path}: the split-K kernel needs the triton package ({e})") from e

    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"matmul_table {path}: cannot read ({e.strerror or e})") from e
    except json.JSONDecodeError as e:
        raise ConfigError(f"matmul_table {path}: not JSON (line {e.lineno}, column {e.colno}: {e.msg})") from e
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise ConfigError(f"matmul_table {path}: expected an object with a list 'entries'")
    names = {f.name for f in fields(SplitKConfig)}
    entries: dict = {}
    for i, e in enumerate(data["entries"]):
        where = f"matmul_table {path}: entries[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected an object, got {e!r}")
        for key in ("n", "k", "max_m"):
            value = e.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}.{key} is {value!r}, expected a positive integer")
        if e.get("dtype") not in DTYPES:
            raise ConfigError(f"{where}.dtype is {e.get('dtype')!r}, expected one of {sorted(DTYPES)}")
        config = e.get("config")
        if not isinstance(config, dict) or set(config) - names or not {"block_m", "block_n", "block_k", "split_k"} <= set(config):
            raise ConfigError(f"{where}.config is {config!r}, expected the fields of SplitKConfig: {sorted(names)}")
        try:
            parsed = SplitKConfig(**config)
        except (TypeError, ValueError) as err:
            raise ConfigError(f"{where}.config: {err}") from err
        key = (e["n"], e["k"], DTYPES[e["dtype"]])
        if any(max_m == e["max_m"] for max_m, _ in entries.get(key, [])):
            raise ConfigError(f"{where}: a second entry for n={e['n']}, k={e['k']}, {e['dtype']}, max_m={e['max_m']}")
        entries.setdefault(key, []).append((e["max_m"], parsed))
    return MatmulTable(entries, source=str(path))
