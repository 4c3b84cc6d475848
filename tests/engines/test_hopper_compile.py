"""Every Triton kernel of the GPU path compiles for an H100/H200 (sm_90) on this CPU machine.

The CPU tests run the kernels in Triton's interpreter, which executes them as Python: it
checks what they compute, not that the GPU compiler accepts them (a construct it rejects, a
tile that needs more shared memory than an SM has). Triton's wheel carries ptxas, so the
compile to a Hopper binary runs here too, with the launch configurations the engines use
(tests/engines/hopper_compile.py, in its own process: under the interpreter nothing compiles)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("triton")

from tests.engines.hopper_compile import CASES, SHARED_MEMORY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compiled():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    run = subprocess.run([sys.executable, "-m", "tests.engines.hopper_compile"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return json.loads(run.stdout)


@pytest.mark.parametrize("case", CASES)
def test_kernel_compiles_for_hopper(compiled, case):
    result = compiled[case]
    assert result["ok"], f"{case}: {result['error']}"
    assert result["shared"] <= SHARED_MEMORY, f"{case}: {result['shared']} bytes of shared memory"
    if case in ("invariant_matmul-wide", "invariant_matmul-narrow"):
        assert result["wgmma"], "bf16 tiles of 128 rows should run on Hopper's warp-group matrix instructions"
