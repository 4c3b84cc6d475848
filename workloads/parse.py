"""Turning what a user wrote into a WorkloadSpec: a preset name, a spec file, or a compact
string, each with optional overrides.

  quick                                   a preset
  quick:num_requests=32,arrival=poisson(4)   a preset with overrides
  synthetic:num_requests=200,prompt=lognormal(512,256),output=uniform(16,256),arrival=poisson(4)
  azure-trace:path=my_trace.csv,limit=500,speedup=2    a source with its keys
  my_workload.toml                        a file (.toml, .yaml, .yml or .json) of the same keys,
  my_workload.toml:seed=3                 optionally with overrides

Keys are WorkloadSpec's fields; commas inside parentheses belong to the value; `key=none`
unsets a key (back to the source's default). A file may name
`preset = "..."` to start from a preset. Relative paths in a file are found next to it first.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

from workloads.errors import WorkloadError
from workloads.expr import split_top_level
from workloads.presets import PRESETS
from workloads.spec import SOURCES, WorkloadSpec, closest_key, coerce

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SPEC_FILE_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
KEYS = set(WorkloadSpec.__dataclass_fields__)


def parse_spec(spec: str | Path | dict | WorkloadSpec) -> WorkloadSpec:
    """Any accepted form -> a resolved, validated WorkloadSpec."""
    if isinstance(spec, WorkloadSpec):
        return spec.resolved()
    if isinstance(spec, Path):
        return from_file(spec)
    if isinstance(spec, dict):
        return from_mapping(spec, "workload spec")
    if isinstance(spec, str):
        return from_text(spec)
    raise WorkloadError(f"workload spec: expected a name, file, dict or WorkloadSpec, got {type(spec).__name__}")


def from_text(text: str) -> WorkloadSpec:
    origin = f"workload {text!r}"
    head, _, rest = text.strip().partition(":")
    head = head.strip()
    overrides = _overrides(rest, origin) if rest.strip() else {}
    if head.lower().endswith(SPEC_FILE_SUFFIXES):
        return from_file(Path(head), overrides)
    if head in PRESETS:
        return from_mapping({"preset": head, **overrides}, origin)
    if head in SOURCES:
        if "source" in overrides:
            raise WorkloadError(f"{origin}: the source is {head!r}; do not set 'source' again")
        return from_mapping({"source": head, **overrides}, origin)
    raise WorkloadError(
        f"{origin}: {head!r} is not a preset, a source or a spec file; presets: "
        f"{', '.join(PRESETS)}; sources: {', '.join(SOURCES)}; files end in "
        f"{', '.join(SPEC_FILE_SUFFIXES)}"
    )


def _overrides(text: str, origin: str) -> dict:
    out = {}
    for item in split_top_level(text):
        key, eq, value = item.partition("=")
        key = key.strip()
        if not eq or not key:
            raise WorkloadError(f"{origin}: {item!r} is not key=value")
        if key in out:
            raise WorkloadError(f"{origin}: key {key!r} given twice")
        value = value.strip()
        # 'none' unsets a key, e.g. a preset's limit: limit=none
        out[key] = None if value.lower() in ("none", "null") else value
    return out


def from_file(path: Path, overrides: dict | None = None) -> WorkloadSpec:
    origin = str(path)
    if path.suffix.lower() not in SPEC_FILE_SUFFIXES:
        raise WorkloadError(
            f"{path}: a workload spec file ends in {', '.join(SPEC_FILE_SUFFIXES)}; for a trace, "
            f"name its source, e.g. 'generic-trace:path={path},prompt_column=...,output_column=...'"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise WorkloadError(f"{path}: cannot read the workload spec file: {e.strerror or e}") from None
    data = _load_document(text, path)
    if not isinstance(data, dict):
        raise WorkloadError(f"{path}: expected a table of workload keys, got {type(data).__name__}")
    # A trace or lengths file named in a spec file is looked for next to that file first.
    if isinstance(data.get("path"), str) and not Path(data["path"]).is_absolute():
        beside = path.parent / data["path"]
        if beside.exists():
            data["path"] = str(beside)
    if overrides:
        origin = f"{path} with overrides {overrides}"
    return from_mapping({**data, **(overrides or {})}, origin)


def _load_document(text: str, path: Path):
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            return tomllib.loads(text)
        if suffix == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, yaml.YAMLError) as e:
        # each of these names the line and column in its message
        raise WorkloadError(f"{path}: not valid {suffix[1:].upper()}: {e}") from None


def from_mapping(data: dict, origin: str) -> WorkloadSpec:
    data = dict(data)
    for key in data:
        if key not in KEYS:
            raise WorkloadError(f"{origin}: unknown key {key!r}{closest_key(str(key))}")
    preset = data.get("preset")
    if preset is not None:
        if preset not in PRESETS:
            raise WorkloadError(
                f"{origin}: unknown preset {preset!r}; presets: {', '.join(PRESETS)}"
            )
        base = PRESETS[preset].spec
        if "source" in data and data["source"] != base["source"]:
            raise WorkloadError(
                f"{origin}: preset {preset!r} has source {base['source']!r}, not "
                f"{data['source']!r}; start from the source instead ('{data['source']}:...')"
            )
        # A trace preset's speedup rescales its timestamps; replaced by another arrival
        # process it has nothing left to act on, so it goes rather than being an error.
        if data.get("arrival") not in (None, "trace") and "speedup" not in data:
            base = {k: v for k, v in base.items() if k != "speedup"}
        data = {**base, **data}
    values = {k: coerce(k, v, origin) for k, v in data.items()}
    return WorkloadSpec(**values).resolved(origin)
