"""Options of the library peers, checked when the engine is built: an unknown name or a value
of the wrong kind is a ConfigError that names the option, the value and what was expected."""

from __future__ import annotations

from dataclasses import dataclass

from engines.request import ConfigError


@dataclass(frozen=True)
class Option:
    kind: type  # bool, int, float or str
    help: str
    minimum: float | None = None  # for int and float
    choices: tuple | None = None  # for str


def check_options(engine: str, given: dict, known: dict[str, Option]) -> dict:
    """`given` with every value checked against `known`; None stands for "the default"."""
    unknown = sorted(set(given) - set(known))
    if unknown:
        listing = "; ".join(f"{name} ({opt.kind.__name__}): {opt.help}" for name, opt in sorted(known.items()))
        raise ConfigError(f"engine {engine!r}: unknown option(s) {unknown}; known options: {listing}")
    return {name: _check(engine, name, value, known[name]) for name, value in given.items()}


def _check(engine: str, name: str, value, opt: Option):
    if value is None:
        return None
    where = f"engine {engine!r}: option {name}={value!r}"
    if opt.kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false")
        return value
    if opt.kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number")
    elif opt.kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number")
        value = float(value)
    elif not isinstance(value, str):
        raise ConfigError(f"{where}: expected a string")
    if opt.minimum is not None and value < opt.minimum:
        raise ConfigError(f"{where}: must be >= {opt.minimum}")
    if opt.choices is not None and value not in opt.choices:
        raise ConfigError(f"{where}: expected one of {', '.join(map(str, opt.choices))}")
    return value
