"""Workloads: synthetic generators, trace loaders and named presets -> list[Request].

    from workloads import build_workload, list_presets
    wl = build_workload("quick", vocab_size=2048, max_model_len=2048)
"""

from workloads.build import build_workload
from workloads.errors import WorkloadError
from workloads.parse import parse_spec
from workloads.presets import DEFAULT_PRESET, PRESETS, list_presets
from workloads.spec import WorkloadSpec, with_concurrency, with_rate
from workloads.workload import Workload

__all__ = [
    "DEFAULT_PRESET",
    "PRESETS",
    "Workload",
    "WorkloadError",
    "WorkloadSpec",
    "build_workload",
    "list_presets",
    "parse_spec",
    "with_concurrency",
    "with_rate",
]
