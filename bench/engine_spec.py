"""Engine specs on the command line: "paged" or "paged:block_size=32,prefix_caching=true".

The part before the first ':' is the registry name; the rest is comma-separated KEY=VALUE
options, each value parsed to bool, int, float or str (in that order of preference). The
whole spec string is the run's label unless the user gives another, so two differently
configured runs of one engine never share a name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engines.request import ConfigError


@dataclass(frozen=True)
class EngineSpec:
    name: str
    options: dict = field(default_factory=dict)
    text: str = ""  # the spec as written: the default label


def parse_value(text: str):
    """'true'/'false' -> bool, '32' -> int, '0.5' / '1e-3' -> float, anything else stays str."""
    low = text.strip().lower()
    if low in ("true", "false"):
        return low == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def parse_key_values(items: list[str], what: str) -> dict:
    """['a=1', 'b=x'] -> {'a': 1, 'b': 'x'}; `what` names the source in error messages."""
    options: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{what}: expected KEY=VALUE, got {item!r}")
        if not key.isidentifier():
            raise ConfigError(f"{what}: option name {key!r} is not a valid name (letters, digits, _)")
        if key in options:
            raise ConfigError(f"{what}: option {key!r} given twice")
        options[key] = parse_value(value.strip())
    return options


def parse_engine_spec(spec: str) -> EngineSpec:
    text = spec.strip()
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not name:
        raise ConfigError(f"engine spec {spec!r}: no engine name before ':'")
    options = parse_key_values([p for p in rest.split(",") if p.strip()], f"engine spec {spec!r}")
    if sep and not options:
        raise ConfigError(f"engine spec {spec!r}: ':' but no KEY=VALUE options after it")
    return EngineSpec(name=name, options=options, text=text)


_BYTE_UNITS = {
    "": 1,
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_bytes(text: str) -> int:
    """'2GiB' -> 2147483648, '1.5GB' -> 1500000000, '4096' -> 4096. Units must be explicit:
    a bare 'G' could mean either 10**9 or 2**30, so it is refused."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([A-Za-z]*)\s*", str(text))
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _BYTE_UNITS:
        raise ConfigError(
            f"memory size {text!r}: expected a number with an optional unit "
            f"(B, KB, MB, GB, TB, KiB, MiB, GiB, TiB), e.g. 2GiB"
        )
    value = float(m.group(1)) * _BYTE_UNITS[unit]
    if value < 1:
        raise ConfigError(f"memory size {text!r}: must be at least 1 byte")
    return int(value)
