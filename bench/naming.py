"""Names of result directories: safe on any file system, stable, and distinct."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timezone
from pathlib import Path


def safe_name(text: str, limit: int = 60) -> str:
    """A directory-name-safe form of a label or workload spec; long ones keep a hash so two
    specs that differ late still get different names."""
    name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", str(text)).strip("_.") or "run"
    if len(name) > limit:
        name = name[:limit] + "-" + hashlib.sha256(str(text).encode()).hexdigest()[:8]
    return name


def workload_dir_name(spec) -> str:
    path = Path(str(spec))
    return safe_name(path.stem if path.suffix in (".toml", ".yaml", ".yml", ".json") else str(spec))


def default_out_dir(kind: str = "compare") -> Path:
    return Path("results") / f"{kind}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}"
