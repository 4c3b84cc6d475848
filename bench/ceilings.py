"""A device's measured ceilings for the roofline: memory bandwidth and matrix rate.

Bandwidth comes from a large device-to-device copy, counting bytes read and written; the
matrix rate from an 8192^3 bf16 product on random data (all-zero inputs run faster on
GPUs and would overstate it). Both are warmed up and the median of several repeats, timed
by CUDA events (on one H200: 4,272 GB/s and 800 TFLOP/s, METRICS.md's 4,265 and 799). On a CPU the same is measured in float32 at sizes that take well under a second.
Results are cached in ~/.cache/llm-batching-bench/ceilings.json, keyed by device name and
driver (or processor and thread count), so every run on a machine uses the same ceilings
and the measuring is paid once.
"""

from __future__ import annotations

import datetime
import functools
import json
import math
import os
import platform
import statistics
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from bench.results import write_json


@dataclass(frozen=True)
class Ceilings:
    """bw_bytes_per_s: bytes read + written per second; flops_per_s: matrix FLOP/s.
    source: "measured-cuda", "measured-cpu", "user", or a measured source with "+user"
    when the user gave one of the two."""

    bw_bytes_per_s: float
    flops_per_s: float
    source: str

    def __post_init__(self):
        for name in ("bw_bytes_per_s", "flops_per_s"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"Ceilings.{name} = {value!r}, expected a positive number")

    def to_dict(self) -> dict:
        return {"bw_bytes_per_s": self.bw_bytes_per_s, "flops_per_s": self.flops_per_s, "source": self.source}


def default_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "llm-batching-bench" / "ceilings.json"


@dataclass(frozen=True)
class _Plan:
    copy_elements: int
    matrix_side: int
    dtype: str
    warmup: int  # runs first, for clocks, caches and the allocator
    samples: int  # the median of these is kept


# A short burst: sustained back-to-back products heat an H200 into its power limit and
# measure the throttled rate (about 650 instead of 790 TFLOP/s), not the ceiling.
_CUDA = _Plan(1 << 30, 8192, "bfloat16", warmup=3, samples=10)  # 2 GiB, far beyond any L2
_CPU = _Plan(1 << 24, 1024, "float32", warmup=1, samples=5)  # 64 MiB; 2 GFLOP a product


def _median_seconds_cpu(fn, plan: _Plan) -> float:
    times = []
    for i in range(plan.warmup + plan.samples):
        t0 = time.perf_counter_ns()
        fn()
        if i >= plan.warmup:
            times.append((time.perf_counter_ns() - t0) / 1e9)
    return statistics.median(times)


def _median_seconds_cuda(fn, plan: _Plan) -> float:
    """Each run between two CUDA events, all queued back to back: the GPU's own clock, with
    no launch or host-sync cost inside the interval."""
    import torch

    for _ in range(plan.warmup):
        fn()
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
              for _ in range(plan.samples)]
    for start, end in events:
        start.record()
        fn()
        end.record()
    torch.cuda.synchronize()
    return statistics.median(start.elapsed_time(end) / 1e3 for start, end in events)


def _measure(device) -> Ceilings:
    import torch

    is_cuda = device.type == "cuda"
    plan = _CUDA if is_cuda else _CPU
    dtype = getattr(torch, plan.dtype)
    gen = torch.Generator(device=device).manual_seed(0)

    def median_seconds(fn):
        if not is_cuda:
            return _median_seconds_cpu(fn, plan)
        with torch.cuda.device(device):
            return _median_seconds_cuda(fn, plan)

    n = plan.copy_elements
    if is_cuda:  # source and destination in at most half of what is free (smaller GPUs)
        n = min(n, torch.cuda.mem_get_info(device)[0] // (4 * dtype.itemsize))
    src = torch.empty(n, dtype=dtype, device=device).uniform_(generator=gen)
    dst = torch.empty_like(src)
    # partial, not a lambda: it holds the tensors themselves, so the del below frees them
    bw = 2 * src.numel() * src.element_size() / median_seconds(functools.partial(dst.copy_, src))  # read + write
    del src, dst

    side = plan.matrix_side
    a = torch.randn(side, side, dtype=dtype, device=device, generator=gen)
    b = torch.randn(side, side, dtype=dtype, device=device, generator=gen)
    out = torch.empty(side, side, dtype=dtype, device=device)
    flops = 2 * side**3 / median_seconds(lambda: torch.mm(a, b, out=out))
    return Ceilings(bw, flops, "measured-cuda" if is_cuda else "measured-cpu")


def device_key(device) -> str:
    """What the cache is keyed by: the device's name and driver (GPU) or the processor and
    thread count (CPU), so a cached number never meets another machine."""
    import torch

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        try:
            import pynvml

            pynvml.nvmlInit()
            driver = pynvml.nvmlSystemGetDriverVersion()
            driver = driver.decode() if isinstance(driver, bytes) else driver
        except Exception:  # no NVML: the CUDA runtime version is the next best tag
            driver = f"cuda {torch.version.cuda}"
        return f"cuda|{name}|driver {driver}"
    cpu = platform.processor() or platform.machine()
    return f"cpu|{cpu}|{torch.get_num_threads()} threads"


def _read_cache(path: Path) -> dict:
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, found {type(data).__name__}")
        return data
    except ValueError as e:  # a broken cache is re-measured, not fatal
        warnings.warn(f"{path}: unreadable ceilings cache ({e}); measuring again and rewriting it")
        return {}


def _from_cache(entry) -> Ceilings | None:
    try:
        return Ceilings(float(entry["bw_bytes_per_s"]), float(entry["flops_per_s"]), str(entry["source"]))
    except (KeyError, TypeError, ValueError):
        return None


def measure_ceilings(
    device="cpu",
    *,
    bw_bytes_per_s: float | None = None,
    flops_per_s: float | None = None,
    cache_path: Path | str | None = None,
    use_cache: bool = True,
    refresh: bool = False,
) -> Ceilings:
    """The device's ceilings: user-given values override; the rest comes from the cache or
    is measured (and cached). cache_path: default ~/.cache/llm-batching-bench/ceilings.json
    (under $XDG_CACHE_HOME when set); use_cache False: neither read nor write it;
    refresh: measure again even if cached, and rewrite the entry."""
    if bw_bytes_per_s is not None and flops_per_s is not None:
        return Ceilings(float(bw_bytes_per_s), float(flops_per_s), "user")
    for name, value in (("bw_bytes_per_s", bw_bytes_per_s), ("flops_per_s", flops_per_s)):
        # a bad half-given override fails before seconds are spent measuring
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ValueError(f"user-given ceiling {name} = {value!r}, expected a positive number")
    import torch

    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    path = (Path(cache_path) if cache_path is not None else default_cache_path()) if use_cache else None
    key = device_key(device)
    cache = _read_cache(path) if path is not None else {}
    measured = None if refresh else _from_cache(cache.get(key))
    if measured is None:
        measured = _measure(device)
        if path is not None:
            _write_cache(path, {**cache, key: {
                **measured.to_dict(),
                "measured_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "torch": torch.__version__,
            }})
    if bw_bytes_per_s is None and flops_per_s is None:
        return measured
    return Ceilings(
        float(measured.bw_bytes_per_s if bw_bytes_per_s is None else bw_bytes_per_s),
        float(measured.flops_per_s if flops_per_s is None else flops_per_s),
        f"{measured.source}+user",
    )


def _write_cache(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, data)  # atomic: two runs may share one cache
