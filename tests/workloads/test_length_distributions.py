from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workloads.distributions import (
    Exponential,
    Fixed,
    LogNormal,
    Mixture,
    Normal,
    Uniform,
    parse_distribution,
)
from workloads.errors import WorkloadError

N = 200_000


def sample(text: str, seed: int = 0, n: int = N) -> np.ndarray:
    return parse_distribution(text).sample(np.random.default_rng(seed), n)


def test_parse_gives_the_named_distribution():
    assert parse_distribution("fixed(7)") == Fixed(7)
    assert parse_distribution("uniform(16, 256)") == Uniform(16, 256)
    assert parse_distribution("normal(100,10)") == Normal(100.0, 10.0)
    assert parse_distribution("LogNormal(512,256)") == LogNormal(512.0, 256.0)
    assert parse_distribution("exponential(50)") == Exponential(50.0)
    mix = parse_distribution("mix(9*uniform(4,32),1*fixed(300))")
    assert isinstance(mix, Mixture)
    assert mix.weights == pytest.approx((0.9, 0.1))
    assert mix.parts == (Uniform(4, 32), Fixed(300))


def test_fixed_and_uniform_ranges_and_means():
    assert (sample("fixed(33)") == 33).all()
    u = sample("uniform(16,256)")
    assert u.min() == 16 and u.max() == 256  # both ends included
    assert u.mean() == pytest.approx(136, rel=0.01)
    counts = np.bincount(sample("uniform(1,4)"))[1:]
    assert counts / N == pytest.approx([0.25] * 4, abs=0.01)


def test_normal_mean_and_std():
    x = sample("normal(500,50)")
    assert x.mean() == pytest.approx(500, rel=0.01)
    assert x.std() == pytest.approx(50, rel=0.02)


def test_lognormal_is_parameterised_by_the_lengths_mean_and_std():
    x = sample("lognormal(512,256)")
    assert x.mean() == pytest.approx(512, rel=0.01)
    assert x.std() == pytest.approx(256, rel=0.03)
    assert np.median(x) < x.mean()  # right-skewed


def test_exponential_mean():
    x = sample("exponential(80)")
    assert x.mean() == pytest.approx(80, rel=0.02)
    assert x.min() >= 0


def test_mixture_proportions():
    x = sample("mix(0.9*uniform(4,32),0.1*uniform(192,384))")
    long = x >= 192
    assert long.mean() == pytest.approx(0.1, abs=0.005)
    assert x[~long].max() <= 32 and x[long].max() <= 384


def test_same_seed_same_lengths_and_other_seed_differs():
    assert (sample("lognormal(512,256)", 1, 100) == sample("lognormal(512,256)", 1, 100)).all()
    assert not (sample("lognormal(512,256)", 1, 100) == sample("lognormal(512,256)", 2, 100)).all()


def test_describe_round_trips():
    for text in ["fixed(3)", "uniform(1,9)", "normal(10,2.5)", "lognormal(512,256)",
                 "exponential(7)", "mix(0.25*fixed(3),0.75*uniform(1,9))"]:
        d = parse_distribution(text)
        assert parse_distribution(d.describe()) == d


@pytest.mark.parametrize(
    "text, message",
    [
        ("zipf(3)", "unknown length distribution 'zipf'"),
        ("uniform(16)", "has 1 argument(s), expected uniform(low,high)"),
        ("uniform(0,10)", "expected 1 <= low <= high"),
        ("uniform(20,10)", "expected 1 <= low <= high"),
        ("uniform(1.5,10)", "expected an integer, got '1.5'"),
        ("fixed(0)", "a length must be >= 1"),
        ("normal(-5,1)", "expected mean > 0"),
        ("lognormal(512,x)", "expected a number, got 'x'"),
        ("exponential(0)", "expected mean > 0"),
        ("mix(uniform(1,2))", "at least two weighted parts"),
        ("mix(0.5*uniform(1,2),uniform(3,4))", "expected weight*dist"),
        ("mix(-1*fixed(2),1*fixed(3))", "weight must be > 0"),
        ("uniform(1,2", "unbalanced"),
        ("uniform 1 2", "expected a name"),
    ],
)
def test_bad_distributions_are_named(text, message):
    with pytest.raises(WorkloadError, match="prompt") as e:
        parse_distribution(text, "prompt")
    assert message in str(e.value)


@settings(max_examples=50, deadline=None)
@given(low=st.integers(1, 5000), width=st.integers(0, 5000), seed=st.integers(0, 2**32 - 1))
def test_uniform_stays_in_range(low, width, seed):
    x = Uniform(low, low + width).sample(np.random.default_rng(seed), 500)
    assert x.min() >= low and x.max() <= low + width


@settings(max_examples=30, deadline=None)
@given(mean=st.floats(1, 4000), cv=st.floats(0, 3), seed=st.integers(0, 2**32 - 1))
def test_lognormal_never_negative(mean, cv, seed):
    x = LogNormal(mean, mean * cv).sample(np.random.default_rng(seed), 200)
    assert x.min() >= 0 and math.isfinite(float(x.mean()))
