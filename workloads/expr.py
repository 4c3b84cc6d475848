"""The small call syntax shared by length distributions and arrival processes.

`uniform(16, 256)`, `poisson(4)`, `mix(0.9*uniform(4,32), 0.1*uniform(192,384))`: a name,
then comma-separated arguments in parentheses. Arguments stay strings here; each user parses
its own, so that an error can say what that argument was meant to be.
"""

from __future__ import annotations

import math
import re

from workloads.errors import WorkloadError

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")


def split_top_level(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses: 'a=f(1,2),b=3' -> ['a=f(1,2)', 'b=3']."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise WorkloadError(f"{text!r}: unbalanced ')' at position {i}")
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise WorkloadError(f"{text!r}: unbalanced '(': a ')' is missing")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def parse_call(text: str, what: str) -> tuple[str, list[str]]:
    """'uniform(16, 256)' -> ('uniform', ['16', '256']); a bare 'offline' -> ('offline', [])."""
    text = text.strip()
    if "(" not in text:
        if not _NAME.match(text):
            raise WorkloadError(f"{what} {text!r}: expected a name like 'uniform(16,256)'")
        return text.lower(), []
    if text.count("(") != text.count(")"):
        raise WorkloadError(f"{what} {text!r}: unbalanced parentheses")
    name, _, rest = text.partition("(")
    name = name.strip()
    if not _NAME.match(name) or not rest.endswith(")"):
        raise WorkloadError(
            f"{what} {text!r}: expected name(arg, ...), e.g. 'uniform(16,256)' or 'poisson(4)'"
        )
    inner = rest[:-1]
    args = split_top_level(inner) if inner.strip() else []
    if any(a == "" for a in args):
        raise WorkloadError(f"{what} {text!r}: empty argument")
    return name.lower(), args


def parse_number(text: str, where: str, *, integer: bool = False) -> float | int:
    """A finite number; with integer=True, a whole number written without a fraction."""
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        expected = "an integer" if integer else "a number"
        raise WorkloadError(f"{where}: expected {expected}, got {text!r}") from None
    if not math.isfinite(value):
        raise WorkloadError(f"{where}: expected a finite number, got {text!r}")
    return value
