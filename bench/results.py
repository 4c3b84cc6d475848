"""The result directory of one run (engine x workload): writing it atomically, reading it back.

    manifest.json     provenance: harness version and commit, engine, model, workload, machine
    requests.parquet  one row per request (bench.records.RequestRecord)
    steps.parquet     one row per engine step (engines.api.StepStats)
    device.parquet    device samples (bench.records.DeviceSample)
    summary.json      every aggregate metric, unit in its name (bench.metrics)

A directory is written under a temporary name and renamed into place when complete, so a
reader never sees half a run. Reports and comparisons read only these files.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.records import DEVICE_COLUMNS, DEVICE_COLUMNS_ADDED, REQUEST_COLUMNS, STEP_COLUMNS, STEP_COLUMNS_ADDED

FORMAT_VERSION = 1
FILES = ("manifest.json", "requests.parquet", "steps.parquet", "device.parquet", "summary.json")


class ResultError(ValueError):
    """A result directory that cannot be read: missing files, wrong format version, corrupt."""


@dataclass
class RunResult:
    path: Path
    manifest: dict
    requests: pd.DataFrame
    steps: pd.DataFrame
    device: pd.DataFrame
    summary: dict

    @property
    def label(self) -> str:
        """A short name for tables and legends: engine, and workload where it helps."""
        return self.manifest.get("label") or self.manifest["engine"]["name"]


def _json_default(value):
    # numpy scalars and Paths appear in manifests built from configs
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically (temp file in the same folder, then rename)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2, default=_json_default, allow_nan=True)
            f.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp makes it private; results are for sharing
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_run(
    path: Path,
    manifest: dict,
    requests: pd.DataFrame,
    steps: pd.DataFrame,
    device: pd.DataFrame,
    summary: dict,
) -> Path:
    """Write a complete result directory at `path` (which must not exist yet)."""
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"result directory already exists: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    try:
        write_json(tmp / "manifest.json", {"format_version": FORMAT_VERSION, **manifest})
        requests.to_parquet(tmp / "requests.parquet", index=False)
        steps.to_parquet(tmp / "steps.parquet", index=False)
        device.to_parquet(tmp / "device.parquet", index=False)
        write_json(tmp / "summary.json", {"format_version": FORMAT_VERSION, **summary})
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _read_json(path: Path) -> dict:
    try:
        with open(path) as f:
            data = json.load(f)
    except json.JSONDecodeError as e:
        raise ResultError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})")
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object, found {type(data).__name__}")
    return data


def _check_version(path: Path, data: dict) -> None:
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise ResultError(
            f"{path}: result format version {version!r}, this harness reads version "
            f"{FORMAT_VERSION}; re-run the benchmark with this version"
        )


def _read_parquet(path: Path, columns: list[str], added: tuple[str, ...] = ()) -> pd.DataFrame:
    """added: columns newer than some files of this format; absent, they read as None."""
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise ResultError(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from e
    missing = [c for c in columns if c not in frame.columns and c not in added]
    if missing:
        raise ResultError(f"{path}: missing columns {missing}")
    for column in added:
        if column not in frame.columns:
            frame[column] = None
    return frame


def load_run(path: str | Path) -> RunResult:
    """Read a result directory, checking that every file is there and of this format."""
    path = Path(path)
    if not path.is_dir():
        raise ResultError(f"{path}: not a result directory (does not exist or is a file)")
    missing = [name for name in FILES if not (path / name).is_file()]
    if missing:
        raise ResultError(f"{path}: incomplete result directory, missing {', '.join(missing)}")
    manifest = _read_json(path / "manifest.json")
    _check_version(path / "manifest.json", manifest)
    summary = _read_json(path / "summary.json")
    _check_version(path / "summary.json", summary)
    return RunResult(
        path=path,
        manifest=manifest,
        requests=_read_parquet(path / "requests.parquet", REQUEST_COLUMNS),
        steps=_read_parquet(path / "steps.parquet", STEP_COLUMNS, STEP_COLUMNS_ADDED),
        device=_read_parquet(path / "device.parquet", DEVICE_COLUMNS, DEVICE_COLUMNS_ADDED),
        summary=summary,
    )


def find_runs(paths: list[str | Path]) -> list[Path]:
    """Result directories named directly or found one level below the given folders
    (a `bench compare` output folder holds one directory per engine x workload)."""
    found: list[Path] = []
    for p in map(Path, paths):
        if (p / "manifest.json").exists():
            found.append(p)
        elif p.is_dir():
            subs = sorted(d for d in p.iterdir() if (d / "manifest.json").exists())
            if not subs:
                raise ResultError(f"{p}: no result directories (no manifest.json) in it")
            found.extend(subs)
        else:
            raise ResultError(f"{p}: no such result directory")
    return found
