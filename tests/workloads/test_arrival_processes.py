from __future__ import annotations

import numpy as np
import pytest

from workloads.arrivals import Closed, Constant, Gamma, Offline, Poisson, TraceTimes, parse_arrival
from workloads.errors import WorkloadError

N = 100_001


def gaps(text: str, seed: int = 0) -> np.ndarray:
    times = parse_arrival(text).times(np.random.default_rng(seed), N)
    assert times[0] == 0.0  # the first request never waits for a gap
    assert (np.diff(times) >= 0).all()
    return np.diff(times)


def test_parse():
    assert parse_arrival("offline") == Offline()
    assert parse_arrival("trace") == TraceTimes()
    assert parse_arrival("poisson(4)") == Poisson(4.0)
    assert parse_arrival("gamma(4, 0.5)") == Gamma(4.0, 0.5)
    assert parse_arrival("constant(2.5)") == Constant(2.5)
    assert parse_arrival("closed(8)") == Closed(8)
    assert [parse_arrival(t).mode for t in ("offline", "poisson(1)", "closed(2)", "trace")] == [
        "offline", "open", "closed", "open"]


def test_offline_and_closed_arrive_at_zero():
    rng = np.random.default_rng(0)
    assert (Offline().times(rng, 10) == 0).all()
    assert (Closed(4).times(rng, 10) == 0).all()


def test_poisson_gaps_mean_one_over_rate_and_cv_one():
    g = gaps("poisson(4)")
    assert g.mean() == pytest.approx(0.25, rel=0.02)
    assert g.std() / g.mean() == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("burstiness", [0.25, 1.0, 4.0])
def test_gamma_keeps_the_rate_and_has_cv2_one_over_burstiness(burstiness):
    g = gaps(f"gamma(2,{burstiness})")
    assert g.mean() == pytest.approx(0.5, rel=0.03)
    assert (g.std() / g.mean()) ** 2 == pytest.approx(1 / burstiness, rel=0.05)


def test_constant_is_evenly_spaced():
    t = parse_arrival("constant(5)").times(np.random.default_rng(0), 6)
    assert t.tolist() == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_seeded():
    a = Poisson(3).times(np.random.default_rng(7), 50)
    assert (a == Poisson(3).times(np.random.default_rng(7), 50)).all()
    assert not (a == Poisson(3).times(np.random.default_rng(8), 50)).all()


@pytest.mark.parametrize(
    "text, message",
    [
        ("burst(3)", "unknown arrival process 'burst'"),
        ("poisson", "has 0 argument(s), expected 1"),
        ("poisson(0)", "rate must be > 0"),
        ("poisson(-2)", "rate must be > 0"),
        ("poisson(fast)", "expected a number, got 'fast'"),
        ("gamma(1)", "has 1 argument(s), expected 2"),
        ("gamma(1,0)", "burstiness must be > 0"),
        ("closed(0)", "at least 1 user"),
        ("closed(2.5)", "expected an integer"),
        ("offline(3)", "expected 0"),
    ],
)
def test_bad_arrivals_are_named(text, message):
    with pytest.raises(WorkloadError, match="arrival") as e:
        parse_arrival(text)
    assert message in str(e.value)
