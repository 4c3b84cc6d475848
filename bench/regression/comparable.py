"""Which runs may be compared: a run's identity, split by what a difference would spoil.

    experiment   what was measured: workload (content hash, mode), model (name, dtype,
                 parameters, config), engine (name, options). Any difference: nothing is
                 comparable, counters included (they count a different job).
    environment  where it was measured: the machine's hardware and software (CPU model and
                 count, GPU model and count, CUDA, torch, transformers), the model's device,
                 the harness version. Any difference: timings are not comparable; counters
                 still are (the same job computes the same tokens on any machine).

Left out on purpose: hostname, OS kernel, Python patch level, memory size and GPU driver
change between CI runners of the same kind without changing the hardware; the model path
changes between checkouts; git commit is what a comparison is for; engine options that change
how a run is observed and not what it computes (OBSERVATION_OPTIONS), so that a baseline
recorded before such an option existed, or with it set otherwise, stays comparable; and engine
options added later, when set to the value that computes what runs from before them computed
(ADDED_OPTIONS), so that an upgrade alone does not make every saved baseline "not comparable".
"""

from __future__ import annotations

from dataclasses import dataclass

EXPERIMENT_KEYS = (
    "workload.content_hash",
    "workload.mode",
    "workload.concurrency",
    "model.name",
    "model.dtype",
    "model.parameters",
    "model.config",
    "engine.name",
    "engine.options",
)
# step_timing: CUDA events around each step (StepStats.device_ns); no measurable cost
OBSERVATION_OPTIONS = ("engine.options.step_timing",)
# options added after baselines were being recorded -> the value that behaves as runs before
# them did (arrival order; paged admitting on demand); any other value is another experiment
ADDED_OPTIONS = {"engine.options.queue_order": "fcfs", "engine.options.admission": "on-demand"}
ENVIRONMENT_KEYS = (
    "harness.version",
    "machine.cpu",
    "machine.cpu_count",
    "machine.gpu",
    "machine.gpu_count",
    "machine.cuda",
    "machine.torch",
    "machine.transformers",
    "model.device",
)


@dataclass(frozen=True)
class Identity:
    experiment: dict  # flat: dotted key -> JSON value
    environment: dict


def _lookup(manifest: dict, dotted: str):
    value = manifest
    for key in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _flatten(prefix: str, value, out: dict) -> None:
    # nested options and configs become one key each, so a difference names the exact field
    if isinstance(value, dict) and value:
        for key in sorted(value):
            _flatten(f"{prefix}.{key}", value[key], out)
    else:
        out[prefix] = value


def _flat(manifest: dict, keys: tuple[str, ...]) -> dict:
    out: dict = {}
    for key in keys:
        _flatten(key, _lookup(manifest, key), out)
    return out


def identity_of(manifest: dict) -> Identity:
    experiment = _flat(manifest, EXPERIMENT_KEYS)
    for key in OBSERVATION_OPTIONS:
        experiment.pop(key, None)
    for key, before in ADDED_OPTIONS.items():
        if experiment.get(key) == before:
            del experiment[key]
    return Identity(experiment, _flat(manifest, ENVIRONMENT_KEYS))


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def differences(baseline: dict, current: dict) -> list[str]:
    """One line per differing key: 'machine.cpu: 'A' (baseline) vs 'B' (current)'."""
    keys = list(dict.fromkeys([*baseline, *current]))
    return [
        f"{k}: {_show(baseline.get(k))} (baseline) vs {_show(current.get(k))} (current)"
        for k in keys
        if baseline.get(k) != current.get(k)
    ]
