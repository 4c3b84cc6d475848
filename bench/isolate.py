"""Run one engine x workload in a fresh Python process (`bench compare --isolate`).

Some peers keep device memory after close (transformers' continuous batching sizes its KV
cache at ~90% of free GPU memory), which would starve the next engine in the same process.
A child `python -m bench run ...` gets a clean device, writes its result directory and exits.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from bench.results import RunResult, load_run
from bench.session import RunOptions
from engines.request import ConfigError

CHILD_GRACE_S = 10  # after our Ctrl-C: time for the child to notice its own before we forward one
CHILD_WRITE_S = 120  # then: time for it to write its partial run before it is killed


class IsolatedRunError(ConfigError):
    """The child process wrote no result (its own error message is on stderr above)."""


def run_argv(
    engine_spec: str,
    model: str,
    workload_spec: str | dict,
    out_dir: Path,
    options: RunOptions,
    *,
    label: str | None = None,
    manifest_extra: dict | None = None,
) -> list[str]:
    """The `bench run` command line that reproduces run_one(...) with these arguments."""
    argv = [
        sys.executable, "-m", "bench", "run",
        "--engine", engine_spec,
        "--model", model,
        *(["--workload-json", json.dumps(workload_spec)] if isinstance(workload_spec, dict)
          else ["--workload", str(workload_spec)]),
        "--out", str(out_dir),
        "--seed", str(options.seed),
        "--warmup-requests", str(options.warmup_requests),
        "--sampler-interval-s", repr(options.sampler_interval_s),
    ]
    optional = {
        "--device": options.device,
        "--dtype": options.dtype,
        "--workload-seed": options.workload_seed,
        "--timeout-s": options.timeout_s,
        "--label": label,
    }
    if options.slo is not None:
        optional.update({
            "--slo-ttft-ms": options.slo.ttft_ms,
            "--slo-tpot-ms": options.slo.tpot_ms,
            "--slo-e2e-ms": options.slo.e2e_ms,
        })
    for flag, value in optional.items():
        if value is not None:
            argv += [flag, str(value)]
    # JSON keeps option types exact (a str "1" stays a str) where KEY=VALUE would re-guess them
    if options.engine_options:
        argv += ["--engine-options-json", json.dumps(options.engine_options)]
    if manifest_extra:
        argv += ["--manifest-extra-json", json.dumps(manifest_extra)]
    if not options.keep_token_ids:
        argv.append("--no-token-ids")
    if not options.progress:
        argv.append("--no-progress")
    if not options.roofline:
        argv.append("--no-roofline")
    if options.ceilings:
        bw, flops = options.ceilings
        argv += ["--ceilings", f"{bw / 1e9!r},{flops / 1e12!r}"]
    return argv


def _wait(proc: subprocess.Popen) -> tuple[int, bool]:
    """Wait for the child; on Ctrl-C give it time to write its partial run. Returns (exit
    code, interrupted)."""
    try:
        return proc.wait(), False
    except KeyboardInterrupt:
        pass
    # the terminal sent SIGINT to the whole process group: the child is stopping on its own
    try:
        return proc.wait(timeout=CHILD_GRACE_S), True
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # it was not in our group (e.g. kill -INT on us alone)
    try:
        return proc.wait(timeout=CHILD_WRITE_S), True
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait(), True


def run_isolated(
    engine_spec: str,
    model: str,
    workload_spec: str | dict,
    out_dir: Path,
    options: RunOptions,
    *,
    label: str | None = None,
    manifest_extra: dict | None = None,
) -> tuple[RunResult, bool]:
    """(the child's result, whether the user interrupted). Raises IsolatedRunError when the
    child wrote nothing, and KeyboardInterrupt when it was interrupted before writing."""
    argv = run_argv(engine_spec, model, workload_spec, out_dir, options, label=label, manifest_extra=manifest_extra)
    proc = subprocess.Popen(argv)
    code, interrupted = _wait(proc)
    if not (Path(out_dir) / "manifest.json").exists():
        if interrupted:
            raise KeyboardInterrupt
        raise IsolatedRunError(
            f"isolated run of {label or engine_spec} exited with code {code} "
            f"and wrote no result (its error is printed above)"
        )
    result = load_run(out_dir)
    return result, interrupted or result.manifest["run"]["status"] == "interrupted"
