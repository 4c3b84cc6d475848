"""One run end to end: engine + workload -> run -> summary -> result directory.

The workload is built after the engine, from the engine's own model limits (vocabulary and
context length), so a preset fits whatever model it is run on. The engine is closed and its
memory freed before the summary and the roofline ceilings are computed, and before the next
engine of a comparison is built.
"""

from __future__ import annotations

import gc
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.engine_spec import parse_engine_spec
from bench.manifest import build_manifest
from bench.metrics import SLO, summarize
from bench.results import RunResult, load_run, write_run
from bench.runner import RunRecords, run_workload
from bench.sampler import DeviceSampler
from engines.api import model_limits
from engines.registry import create_engine
from engines.request import ConfigError
from workloads import build_workload
from workloads.workload import Workload


@dataclass(frozen=True)
class RunOptions:
    """Everything about a run that is the same for every engine and workload of a comparison.

    engine_options: passed to every engine (an engine spec's own options override them).
    seed: the engine's (random weights, sampling); workload_seed: None keeps the workload
    spec's own seed, so every engine of a comparison gets the same requests.
    """

    device: str | None = None
    dtype: str | None = None
    seed: int = 0
    workload_seed: int | None = None
    engine_options: dict = field(default_factory=dict)
    slo: SLO | None = None
    timeout_s: float | None = None
    keep_token_ids: bool = True
    progress: bool = True
    warmup_requests: int = 2
    roofline: bool = True
    sampler_interval_s: float = 0.2
    ceilings: tuple[float, float] | None = None  # user-given (bytes/s, FLOP/s) for the roofline

    def as_kwargs(self) -> dict:
        out = asdict(self)
        out["slo"] = self.slo  # asdict would turn the SLO into a plain dict
        return out


def engine_device(info: dict, requested: str | None) -> str | None:
    model = info.get("model")
    if isinstance(model, dict) and model.get("device"):
        return str(model["device"])
    return requested


def free_device_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")  # only if something imported it: no import for a mock run
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def roofline_for(
    info: dict, workload: Workload, records: RunRecords, device: str | None,
    ceilings: tuple[float, float] | None = None, steps=None,
) -> dict | None:
    """The roofline bound of an offline run of a known model that finished; else None.
    ceilings: (bytes/s, FLOP/s) given by the user; else measured once per device and cached.
    steps: the run's steps frame, for the bound of the engine's own steps (`steps_bound`;
    None for engines whose steps do not count their attention)."""
    model = info.get("model")
    if workload.mode != "offline" or records.status != "complete" or not isinstance(model, dict):
        return None
    if not model.get("config") or not model.get("dtype"):
        return None
    from bench.metrics.phases import phase_breakdown, step_times_s
    from bench.roofline import ModelShape, dtype_bytes, measure_ceilings, roofline_bound, step_bounds, summed_bounds

    try:
        shape = ModelShape.from_config(model["config"])
        given = dict(zip(("bw_bytes_per_s", "flops_per_s"), ceilings)) if ceilings else {}
        measured = measure_ceilings(device or "cpu", **given)
        element_bytes = dtype_bytes(model["dtype"])
        bound = roofline_bound(
            shape,
            element_bytes,
            [len(r.prompt_ids) for r in workload.requests],
            [r.max_new_tokens for r in workload.requests],
            measured,
        )
        bounds = None if steps is None else step_bounds(shape, element_bytes, steps, measured)
        own = None
        if bounds is not None:
            on_gpu = str(model.get("device") or device or "").startswith("cuda")
            async_scheduling = bool((info.get("options") or {}).get("async_scheduling"))
            times, source = step_times_s(steps, on_gpu=on_gpu, async_scheduling=async_scheduling)
            own = {**summed_bounds(bounds, steps), "time_source": source,
                   "phases": phase_breakdown(steps, times, bounds.seconds)}
        return {**bound, "steps_bound": own}
    except (ValueError, KeyError, TypeError, RuntimeError) as e:
        # a model shape the roofline does not know is no reason to lose the run
        print(f"warning: no roofline for this run ({type(e).__name__}: {e})", file=sys.stderr)
        return None


def run_one(
    engine_spec: str,
    model: str,
    workload_spec,
    out_dir: Path,
    *,
    label: str | None = None,
    manifest_extra: dict | None = None,
    device: str | None = None,
    dtype: str | None = None,
    seed: int = 0,
    workload_seed: int | None = None,
    engine_options: dict | None = None,
    slo: SLO | None = None,
    timeout_s: float | None = None,
    keep_token_ids: bool = True,
    progress: bool = True,
    warmup_requests: int = 2,
    roofline: bool = True,
    sampler_interval_s: float = 0.2,
    ceilings: tuple[float, float] | None = None,
) -> RunResult:
    """Run one engine on one workload and write its result directory at `out_dir` (which
    must not exist). An interrupted or failed run is written too; manifest["run"]["status"]
    says how it ended."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise ConfigError(f"output directory {out_dir} already exists; choose another --out")
    spec = parse_engine_spec(engine_spec)
    options = {**(engine_options or {}), **spec.options}
    placement = {k: v for k, v in (("device", device), ("dtype", dtype)) if v is not None}
    engine = create_engine(spec.name, model=model, seed=seed, **placement, **options)
    try:
        info = engine.describe()
        vocab_size, max_model_len = model_limits(info)
        workload = build_workload(
            workload_spec, vocab_size=vocab_size, max_model_len=max_model_len, seed=workload_seed
        )
        run_device = engine_device(info, device)
        records = run_workload(
            engine,
            workload,
            keep_token_ids=keep_token_ids,
            progress=progress,
            sampler=DeviceSampler(run_device, interval_s=sampler_interval_s),
            timeout_s=timeout_s,
            warmup_requests=warmup_requests,
        )
    finally:
        engine.close()
        del engine
        free_device_memory()

    requests, steps, device_samples = records.frames()
    bound = roofline_for(info, workload, records, run_device, ceilings, steps) if roofline else None
    summary = summarize(requests, steps, device_samples, slo=slo, roofline=bound)
    run = {
        "mode": workload.mode,
        "seed": seed,
        "workload_seed": workload_seed,
        "started_at": records.started_at,
        "status": records.status,
        "warmup_s": records.warmup_s,
        "error": records.error,
    }
    if records.traceback:
        run["traceback"] = records.traceback
    manifest = build_manifest(
        engine_info=info,
        workload=workload,
        run=run,
        device_sampler=records.sampler,
        label=label or spec.text,
        extra=manifest_extra,
    )
    write_run(out_dir, manifest, requests, steps, device_samples, summary)
    return load_run(out_dir)
