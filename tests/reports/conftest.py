"""Fixtures: result directories written with bench.results.write_run from synthetic frames and
loaded back with load_run, so the report sees exactly what it would see from a real run."""

from __future__ import annotations

import numpy as np
import pytest

from bench.records import DEVICE_COLUMNS, STEP_COLUMNS
from bench.results import load_run, write_run
from tests.reports.synthetic_runs import (
    empty_frame,
    manifest_for,
    summary_for,
    synthetic_device,
    synthetic_requests,
    synthetic_steps,
)


@pytest.fixture
def make_run(tmp_path):
    """make_run(label, ...) -> RunResult, written to and loaded from tmp_path/<dir>."""
    counter = iter(range(10_000))

    def make(label: str = "paged", *, engine: str | None = None, workload: str = "quick", n_requests: int = 40,
             n_steps: int = 300, steps: bool = True, device: str | None = "nvml", failed=None, padded=False,
             idle=False, sweep=None, seed: int = 0, tpot_ms: float = 20.0, summary_extra=None,
             manifest_extra=None, notes: str = "synthetic"):
        rng = np.random.default_rng(seed)
        requests = synthetic_requests(n_requests, rng, tpot_ms=tpot_ms, failed=failed)
        end = int(requests["finish_ns"].max()) if len(requests) else 10**9
        steps_frame = (synthetic_steps(n_steps, rng, end, padded=padded, idle=idle) if steps
                       else empty_frame(STEP_COLUMNS))
        device_frame = synthetic_device(end, device) if device else empty_frame(DEVICE_COLUMNS)
        summary = summary_for(requests, steps_frame, device_frame, **(summary_extra or {}))
        manifest = manifest_for(label, engine or label.split(":")[0], workload, sweep=sweep, source=device or "cpu",
                                notes=notes)
        manifest.update(manifest_extra or {})
        path = tmp_path / "runs" / f"{next(counter):03d}-{label.replace(':', '_').replace('/', '_')[:40]}"
        write_run(path, manifest, requests, steps_frame, device_frame, summary)
        return load_run(path)

    return make


@pytest.fixture
def ladder(make_run):
    """The four in-repo engines on one workload, plus a peer that cannot see its steps."""
    return [
        make_run("naive", padded=True, seed=1, tpot_ms=40),
        make_run("static", idle=True, seed=2, tpot_ms=30),
        make_run("continuous", seed=3, tpot_ms=22),
        make_run("paged", seed=4, tpot_ms=20),
        make_run("hf-generate", steps=False, device=None, seed=5, tpot_ms=35),
    ]
