"""Provenance of a run: what ran, on what, from which code, and how it ended.

A number without its provenance cannot be compared later, so every result directory carries
this manifest (keys documented in docs/RESULTS.md). Everything here is best effort: a
missing git, NVML or /proc/cpuinfo gives None for that field, never a failed run.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from engines.registry import ENGINES
from workloads.workload import Workload

PROJECT_DIR = Path(__file__).resolve().parent.parent


def harness_version() -> str:
    try:
        from bench import __version__

        return __version__
    except ImportError:  # `bench` shadowed by a namespace package (a tests/bench folder on sys.path)
        return importlib.metadata.version("llm-batching-bench")


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def harness_info(project_dir: Path = PROJECT_DIR) -> dict:
    """Harness version, git commit and dirty flag of the checkout the harness runs from
    (None for both when it is not a git checkout, e.g. installed from a wheel)."""
    info = {"version": harness_version(), "git_commit": None, "git_dirty": None}
    top = _git(["rev-parse", "--show-toplevel"], project_dir)
    # the harness may be installed inside someone else's repository: only our own checkout counts
    if top is None or Path(top.strip()).resolve() != Path(project_dir).resolve():
        return info
    commit = _git(["rev-parse", "HEAD"], project_dir)
    status = _git(["status", "--porcelain", "--untracked-files=no"], project_dir)
    info["git_commit"] = commit.strip() if commit else None
    info["git_dirty"] = None if status is None else bool(status.strip())
    return info


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _gpu_info(device: str | None) -> dict:
    info = {"gpu": None, "gpu_count": 0, "driver": None, "cuda": None}
    # torch only if the engine already loaded it: importing it costs seconds for a mock run
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            info["cuda"] = torch.version.cuda
            if torch.cuda.is_available():
                index = torch.device(device).index if device and device.startswith("cuda") else None
                info["gpu"] = torch.cuda.get_device_name(index or 0)
                info["gpu_count"] = torch.cuda.device_count()
        except Exception:
            pass  # a broken CUDA setup must not fail the run; NVML below may still answer
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            info["driver"] = driver.decode() if isinstance(driver, bytes) else driver
            if info["gpu"] is None and pynvml.nvmlDeviceGetCount() > 0:
                name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
                info["gpu"] = name.decode() if isinstance(name, bytes) else name
                info["gpu_count"] = pynvml.nvmlDeviceGetCount()
        finally:
            pynvml.nvmlShutdown()
    except Exception:
        pass  # no NVML library, no driver or no GPU: the fields stay None
    return info


def machine_info(device: str | None = None) -> dict:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        **_gpu_info(device),
        "torch": _version("torch"),
        "transformers": _version("transformers"),
    }


def _engine_kind(name: str) -> str | None:
    entry = ENGINES.get(name)
    return entry.kind if entry else None


def build_manifest(
    *,
    engine_info: dict,
    workload: Workload,
    run: dict,
    device_sampler: dict,
    label: str | None = None,
    extra: dict | None = None,
) -> dict:
    """The manifest.json content (bench.results adds format_version).

    engine_info: the engine's describe(); run: {mode, seed, started_at, status, warmup_s,
    error}; extra: further top-level keys (e.g. "sweep", "repeat", "load").
    """
    model = engine_info.get("model")
    device = model.get("device") if isinstance(model, dict) else None
    manifest = {
        "label": label or engine_info.get("name"),
        "harness": harness_info(),
        "engine": {
            "name": engine_info.get("name"),
            "kind": _engine_kind(engine_info.get("name", "")),
            "options": engine_info.get("options", {}),
        },
        "model": model,
        "workload": {**workload.describe(), "greedy": all(r.sampling.greedy for r in workload.requests)},
        "run": run,
        "machine": machine_info(device),
        "device_sampler": device_sampler,
        "argv": list(sys.argv),
    }
    for key, value in (extra or {}).items():
        if key in manifest:
            raise ValueError(f"manifest extra key {key!r} would overwrite a standard key")
        manifest[key] = value
    return manifest
