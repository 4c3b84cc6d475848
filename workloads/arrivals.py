"""Arrival processes: when each request arrives, seconds from the start. Pure and seeded.

  offline           every request at t = 0, handed over at once (Workload.mode "offline")
  poisson(rate)     exponential gaps, mean 1/rate s (open loop)
  gamma(rate, b)    gamma gaps with shape b and scale 1/(rate*b): mean gap 1/rate, and the
                    squared coefficient of variation of the gaps is CV^2 = 1/b. b = 1 is
                    Poisson, b < 1 burstier, b > 1 more regular. This is vLLM
                    benchmark_serving's `burstiness` convention.
  constant(rate)    evenly spaced, 1/rate s apart
  closed(n)         n concurrent users, each sending its next request when the last one
                    ended (Workload.mode "closed", concurrency n); arrival_s is 0 for all
  trace             the arrival times written in the trace file (trace sources only)

The first request of an open-loop process arrives at t = 0 and the n-1 gaps follow: a run
never starts by idling for the first gap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workloads.errors import WorkloadError
from workloads.expr import parse_call, parse_number


def _from_gaps(gaps: np.ndarray) -> np.ndarray:
    return np.concatenate([[0.0], np.cumsum(gaps)]) if len(gaps) else np.zeros(0)


@dataclass(frozen=True)
class Offline:
    mode = "offline"

    def times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.zeros(n)

    def describe(self) -> str:
        return "offline"


@dataclass(frozen=True)
class Poisson:
    rate: float
    mode = "open"

    def times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _from_gaps(rng.exponential(1.0 / self.rate, size=max(n - 1, 0)))

    def describe(self) -> str:
        return f"poisson({self.rate:g})"


@dataclass(frozen=True)
class Gamma:
    rate: float
    burstiness: float
    mode = "open"

    def times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        scale = 1.0 / (self.rate * self.burstiness)
        return _from_gaps(rng.gamma(self.burstiness, scale, size=max(n - 1, 0)))

    def describe(self) -> str:
        return f"gamma({self.rate:g},{self.burstiness:g})"


@dataclass(frozen=True)
class Constant:
    rate: float
    mode = "open"

    def times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.arange(n) / self.rate

    def describe(self) -> str:
        return f"constant({self.rate:g})"


@dataclass(frozen=True)
class Closed:
    concurrency: int
    mode = "closed"

    def times(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.zeros(n)

    def describe(self) -> str:
        return f"closed({self.concurrency})"


@dataclass(frozen=True)
class TraceTimes:
    """Replay the trace's own timestamps; the builder supplies them, nothing is drawn."""

    mode = "open"

    def describe(self) -> str:
        return "trace"


ArrivalProcess = Offline | Poisson | Gamma | Constant | Closed | TraceTimes

USAGE = "offline, poisson(rate), gamma(rate,burstiness), constant(rate), closed(users), trace"


def parse_arrival(text: str, where: str = "arrival") -> ArrivalProcess:
    """'poisson(4)' -> Poisson(4.0); errors name `where`, the text and the expected forms."""
    if not isinstance(text, str):
        raise WorkloadError(f"{where}: expected one of {USAGE}, got {text!r}")
    name, args = parse_call(text, where)
    arity = {"offline": 0, "trace": 0, "poisson": 1, "constant": 1, "closed": 1, "gamma": 2}
    if name not in arity:
        raise WorkloadError(f"{where}: unknown arrival process {name!r} in {text!r}; known: {USAGE}")
    if len(args) != arity[name]:
        raise WorkloadError(
            f"{where}: {text!r} has {len(args)} argument(s), expected {arity[name]} ({USAGE})"
        )
    if name == "offline":
        return Offline()
    if name == "trace":
        return TraceTimes()
    if name == "closed":
        users = parse_number(args[0], f"{where}: closed(users) in {text!r}", integer=True)
        if users < 1:
            raise WorkloadError(f"{where}: {text!r}: closed needs at least 1 user, got {users}")
        return Closed(users)
    rate = parse_number(args[0], f"{where}: rate in {text!r}")
    if not rate > 0:
        raise WorkloadError(f"{where}: {text!r}: rate must be > 0 requests/s, got {rate:g}")
    if name == "poisson":
        return Poisson(rate)
    if name == "constant":
        return Constant(rate)
    burstiness = parse_number(args[1], f"{where}: burstiness in {text!r}")
    if not burstiness > 0:
        raise WorkloadError(
            f"{where}: {text!r}: burstiness must be > 0 (1 = Poisson), got {burstiness:g}"
        )
    return Gamma(rate, burstiness)
