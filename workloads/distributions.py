"""Length distributions for prompts and outputs: pure, seeded by the caller's generator.

Written as calls, e.g. `uniform(16,256)`:

  fixed(n)               every length is n
  uniform(low, high)     integers, both ends included
  normal(mean, std)      rounded to the nearest integer
  lognormal(mean, std)   mean and std of the *lengths* themselves (not of their log), rounded;
                         heavy right tail, the usual shape of real prompt and output lengths
  exponential(mean)      rounded
  mix(w1*dist1, w2*dist2, ...)   each length drawn from dist_i with probability w_i
                         (weights are normalised, so 9*a,1*b means 90% / 10%)

`sample` returns rounded integers and may return values below 1 (a normal's left tail, a 0.4
rounded down); the synthetic builder raises them to 1 and counts that distortion in the
workload's notes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from workloads.errors import WorkloadError
from workloads.expr import parse_call, parse_number, split_top_level


@dataclass(frozen=True)
class Fixed:
    value: int

    def __post_init__(self) -> None:
        if self.value < 1:
            raise WorkloadError(f"fixed({self.value}): a length must be >= 1")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.full(n, self.value, dtype=np.int64)

    def describe(self) -> str:
        return f"fixed({self.value})"


@dataclass(frozen=True)
class Uniform:
    low: int
    high: int

    def __post_init__(self) -> None:
        if not (1 <= self.low <= self.high):
            raise WorkloadError(
                f"uniform({self.low},{self.high}): expected 1 <= low <= high"
            )

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.integers(self.low, self.high + 1, size=n, dtype=np.int64)

    def describe(self) -> str:
        return f"uniform({self.low},{self.high})"


@dataclass(frozen=True)
class Normal:
    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (self.mean > 0 and self.std >= 0):
            raise WorkloadError(f"normal({self.mean},{self.std}): expected mean > 0, std >= 0")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.rint(rng.normal(self.mean, self.std, size=n)).astype(np.int64)

    def describe(self) -> str:
        return f"normal({self.mean:g},{self.std:g})"


@dataclass(frozen=True)
class LogNormal:
    """Parameterised by the mean and std of the lengths, which is what a trace summary
    reports. Underneath: sigma^2 = ln(1 + std^2/mean^2), mu = ln(mean) - sigma^2/2."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (self.mean > 0 and self.std >= 0):
            raise WorkloadError(
                f"lognormal({self.mean},{self.std}): expected mean > 0, std >= 0 "
                "(the mean and std of the lengths, not of their logarithm)"
            )

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        sigma2 = math.log1p((self.std / self.mean) ** 2)
        mu = math.log(self.mean) - sigma2 / 2
        return np.rint(rng.lognormal(mu, math.sqrt(sigma2), size=n)).astype(np.int64)

    def describe(self) -> str:
        return f"lognormal({self.mean:g},{self.std:g})"


@dataclass(frozen=True)
class Exponential:
    mean: float

    def __post_init__(self) -> None:
        if not self.mean > 0:
            raise WorkloadError(f"exponential({self.mean}): expected mean > 0")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.rint(rng.exponential(self.mean, size=n)).astype(np.int64)

    def describe(self) -> str:
        return f"exponential({self.mean:g})"


@dataclass(frozen=True)
class Mixture:
    weights: tuple[float, ...]  # normalised to sum 1
    parts: tuple  # LengthDistribution each

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # Pick every sample's component first, then fill each component's slots in one draw:
        # the result depends only on (rng state, n), never on an iteration order.
        which = rng.choice(len(self.parts), size=n, p=np.asarray(self.weights))
        out = np.empty(n, dtype=np.int64)
        for i, part in enumerate(self.parts):
            slots = np.flatnonzero(which == i)
            out[slots] = part.sample(rng, len(slots))
        return out

    def describe(self) -> str:
        inner = ",".join(f"{w:g}*{p.describe()}" for w, p in zip(self.weights, self.parts))
        return f"mix({inner})"


LengthDistribution = Fixed | Uniform | Normal | LogNormal | Exponential | Mixture

# name -> (class, number of arguments, integer arguments?, usage)
_SIMPLE = {
    "fixed": (Fixed, 1, True, "fixed(n)"),
    "uniform": (Uniform, 2, True, "uniform(low,high)"),
    "normal": (Normal, 2, False, "normal(mean,std)"),
    "lognormal": (LogNormal, 2, False, "lognormal(mean,std)"),
    "exponential": (Exponential, 1, False, "exponential(mean)"),
}
USAGE = ", ".join(u for *_, u in _SIMPLE.values()) + ", mix(w1*dist1,w2*dist2,...)"


def parse_distribution(text: str, where: str = "length distribution") -> LengthDistribution:
    """'lognormal(512,256)' -> LogNormal(512.0, 256.0); errors name `where` and the text."""
    if not isinstance(text, str):
        raise WorkloadError(f"{where}: expected a distribution such as 'uniform(16,256)', got {text!r}")
    name, args = parse_call(text, where)
    if name == "mix":
        return _parse_mixture(text, args, where)
    if name not in _SIMPLE:
        raise WorkloadError(
            f"{where}: unknown length distribution {name!r} in {text!r}; known: {USAGE}"
        )
    cls, arity, integer, usage = _SIMPLE[name]
    if len(args) != arity:
        raise WorkloadError(
            f"{where}: {text!r} has {len(args)} argument(s), expected {usage}"
        )
    values = [parse_number(a, f"{where}: {usage} in {text!r}", integer=integer) for a in args]
    try:
        return cls(*values)
    except WorkloadError as e:
        raise WorkloadError(f"{where}: {e}") from None


def _parse_mixture(text: str, args: list[str], where: str) -> Mixture:
    if len(args) < 2:
        raise WorkloadError(f"{where}: {text!r}: mix needs at least two weighted parts, w*dist")
    weights, parts = [], []
    for arg in args:
        pieces = split_top_level(arg, sep="*")
        if len(pieces) != 2:
            raise WorkloadError(
                f"{where}: mix part {arg!r} in {text!r}: expected weight*dist, e.g. 0.9*uniform(4,32)"
            )
        w = parse_number(pieces[0], f"{where}: weight of mix part {arg!r}")
        if not w > 0:
            raise WorkloadError(f"{where}: mix part {arg!r}: weight must be > 0, got {w:g}")
        weights.append(w)
        parts.append(parse_distribution(pieces[1], where))
    total = sum(weights)
    return Mixture(tuple(w / total for w in weights), tuple(parts))
