"""The metric table, thresholds, comparability and spreads: the small pieces a verdict stands on."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bench.regression.comparable import differences, identity_of
from bench.regression.marks import NO_SIGNIFICANT_CHANGE, WITHIN_THRESHOLD, judge
from bench.regression.rules import METRICS_BY_NAME, metric_value, parse_threshold, resolve_thresholds
from bench.regression.spread import Spread, repeat_spreads
from engines.request import ConfigError


def test_directions_are_stated():
    assert METRICS_BY_NAME["ttft_ms.p50"].better == "lower"
    assert METRICS_BY_NAME["output_tok_per_s"].better == "higher"
    assert METRICS_BY_NAME["prefix_cache_hit_tokens"].better == "higher"
    assert METRICS_BY_NAME["kv_tokens_peak"].better == "none"


@pytest.mark.parametrize(
    "metric, change, significant, mark",
    [
        ("ttft_ms.p50", +0.25, True, "worse"),  # slower
        ("ttft_ms.p50", -0.25, True, "better"),
        ("output_tok_per_s", -0.25, True, "worse"),  # less throughput
        ("output_tok_per_s", +0.25, True, "better"),
        ("output_tok_per_s", -0.25, False, "no significant change"),  # inside the noise
        ("output_tok_per_s", -0.05, True, "no significant change"),  # under the 10% threshold
        ("output_tok_per_s", -0.10, True, "no significant change"),  # at it: not past it
        ("kv_tokens_peak", -0.01, True, "worse"),  # no better direction: a change is a change
        ("padded_tokens", 0.0, False, "no significant change"),
    ],
)
def testjudge(metric, change, significant, mark):
    m = METRICS_BY_NAME[metric]
    threshold = 0.0 if m.kind == "counter" else 0.10
    assert judge(m, change, significant, threshold, None) == (mark, mark == "worse")


# a latency with no better direction: none in METRICS, but the rule must not depend on that
UNDIRECTED = dataclasses.replace(METRICS_BY_NAME["tpot_ms.p99"], better="none")
NO = NO_SIGNIFICANT_CHANGE


@pytest.mark.parametrize(
    "metric, change, significant, ci, threshold, mark",
    [
        # lower is better: the CI's upper end is the bad one
        ("tpot_ms.p99", +0.02, False, (-0.03, 0.04), 0.05, WITHIN_THRESHOLD),
        ("tpot_ms.p99", -0.02, False, (-0.08, 0.05), 0.05, WITHIN_THRESHOLD),  # at the threshold: within
        ("tpot_ms.p99", +0.02, False, (-0.03, 0.06), 0.05, NO),  # could be 6% slower
        ("tpot_ms.p99", -0.02, False, (-0.40, 0.01), 0.05, WITHIN_THRESHOLD),  # a wide good end does not matter
        ("tpot_ms.p99", +0.03, True, (0.01, 0.045), 0.05, WITHIN_THRESHOLD),  # significant, but shown small
        ("tpot_ms.p99", -0.25, True, (-0.30, -0.20), 0.05, "better"),  # past the threshold: better wins
        ("tpot_ms.p99", -0.01, False, (-0.04, 0.0), 0.0, WITHIN_THRESHOLD),  # threshold 0: all of it at or below 0
        ("tpot_ms.p99", -0.01, False, (-0.04, 0.001), 0.0, NO),
        # higher is better: the lower end is the bad one
        ("output_tok_per_s", -0.02, False, (-0.04, 0.03), 0.05, WITHIN_THRESHOLD),
        ("output_tok_per_s", +0.02, False, (-0.01, 0.30), 0.05, WITHIN_THRESHOLD),
        ("output_tok_per_s", +0.02, False, (-0.06, 0.04), 0.05, NO),  # could be 6% less
        # never within threshold
        ("output_tok_per_s", -0.01, False, None, 0.05, NO),  # no CI: one run a side
        ("tpot_ms.p50", 0.0, False, (math.nan, math.nan), 0.05, NO),  # bootstrap with no finite ratio
        ("padded_tokens", 0.0, False, (0.0, 0.0), 0.05, NO),  # counters are exact: nothing to bound
        (UNDIRECTED, 0.0, False, (-0.01, 0.01), 0.05, NO),  # no better direction, so no bad one to bound
    ],
)
def test_within_threshold_needs_the_bad_end_of_the_ci_inside_it(metric, change, significant, ci, threshold, mark):
    m = METRICS_BY_NAME[metric] if isinstance(metric, str) else metric
    assert judge(m, change, significant, threshold, ci) == (mark, False)  # never a regression


def test_metric_values_from_a_summary():
    summary = {"counts": {"ok": 7}, "output_tok_per_s": 12.5, "engine": {
        "prefill_tokens": 100, "decode_tokens": 20, "padded_tokens": 30, "wasted_decode_tokens": 4, "steps": 9}}
    assert metric_value(METRICS_BY_NAME["tokens_computed"], summary) == 154
    assert metric_value(METRICS_BY_NAME["requests_ok"], summary) == 7
    assert metric_value(METRICS_BY_NAME["output_tok_per_s"], summary) == 12.5
    assert metric_value(METRICS_BY_NAME["steps"], {"engine": None}) is None
    assert metric_value(METRICS_BY_NAME["goodput_req_per_s"], {"goodput_req_per_s": None}) is None


def test_thresholds():
    t = resolve_thresholds({"ttft_ms": 0.3, "e2e_ms.p99": 0.5, "steps": 0.02})
    assert t["ttft_ms.p50"] == t["ttft_ms.p99"] == 0.3  # a sample name sets both statistics
    assert t["e2e_ms.p99"] == 0.5 and t["e2e_ms.p50"] == 0.10 and t["steps"] == 0.02
    assert t["padded_tokens"] == 0.0 and t["tpot_ms.p99"] == 0.20
    assert parse_threshold("ttft_ms.p50=15") == ("ttft_ms.p50", 0.15)
    assert parse_threshold(" itl_ms = 7.5% ") == ("itl_ms", 0.075)
    for bad in ("ttft_ms.p50", "=5", "ttft_ms=fast"):
        with pytest.raises(ConfigError, match="expected METRIC=PERCENT"):
            parse_threshold(bad)
    with pytest.raises(ConfigError, match="must be a finite number >= 0, got nan"):
        resolve_thresholds({"steps": float("nan")})


def manifest(**changes):
    m = {
        "harness": {"version": "0.1.0", "git_commit": "abc"},
        "engine": {"name": "paged", "options": {"block_size": 16, "max_batch": 8}},
        "model": {"name": "tiny", "dtype": "float32", "device": "cpu", "path": "/a"},
        "workload": {"name": "quick", "content_hash": "h1", "mode": "offline"},
        "machine": {"hostname": "a", "cpu": "X", "cpu_count": 4, "platform": "Linux-6.1", "torch": "2.13"},
    }
    for dotted, value in changes.items():
        *path, key = dotted.split("__")
        target = m
        for p in path:
            target = target[p]
        target[key] = value
    return m


def test_what_makes_runs_incomparable():
    base = identity_of(manifest())
    # ephemeral CI runners, other checkouts, other commits: still comparable
    same = identity_of(manifest(machine__hostname="b", machine__platform="Linux-6.8", model__path="/b",
                                harness__git_commit="def"))
    assert same == base
    env = identity_of(manifest(machine__cpu="Y", harness__version="0.2.0"))
    assert differences(base.experiment, env.experiment) == []
    assert differences(base.environment, env.environment) == [
        "harness.version: '0.1.0' (baseline) vs '0.2.0' (current)",
        "machine.cpu: 'X' (baseline) vs 'Y' (current)",
    ]
    exp = identity_of(manifest(engine__options={"block_size": 32, "max_batch": 8}, workload__content_hash="h2"))
    assert differences(base.experiment, exp.experiment) == [
        "workload.content_hash: 'h1' (baseline) vs 'h2' (current)",
        "engine.options.block_size: 16 (baseline) vs 32 (current)",
    ]
    added = identity_of(manifest(engine__options={"block_size": 16, "max_batch": 8, "prefix_caching": True}))
    assert differences(base.experiment, added.experiment) == [
        "engine.options.prefix_caching: None (baseline) vs True (current)"
    ]
    # how a run is observed is not what it computes: a baseline from before step timing, or
    # with it off, compares with a run that times its steps
    for timing in (True, False):
        timed = identity_of(manifest(engine__options={"block_size": 16, "max_batch": 8, "step_timing": timing}))
        assert timed == base
    # options added later: at the value that computes what older runs computed they are the
    # same experiment as a baseline from before them; at any other value they are not
    upgraded = identity_of(manifest(engine__options={"block_size": 16, "max_batch": 8, "queue_order": "fcfs",
                                                     "admission": "on-demand"}))
    assert upgraded == base
    lof = identity_of(manifest(engine__options={"block_size": 16, "max_batch": 8, "queue_order": "lof",
                                                "admission": "reserve"}))
    assert differences(base.experiment, lof.experiment) == [
        "engine.options.admission: None (baseline) vs 'reserve' (current)",
        "engine.options.queue_order: None (baseline) vs 'lof' (current)",
    ]


def test_spread():
    s = Spread.of([100.0, 110.0, None, 90.0])
    assert (s.n, s.min, s.median, s.max) == (3, 90.0, 100.0, 110.0)
    assert s.cv == pytest.approx(10.0 / 100.0)  # sample std of 90, 100, 110 is 10
    assert Spread.of([5.0]).cv is None and Spread.of([]).n == 0


def test_repeat_spreads_of_runs(runs):
    spreads = repeat_spreads(runs("slow") + runs("ladder"))
    slow = spreads["continuous · ci-mixed"]
    assert slow.n == 4  # three slow repeats and the ladder's continuous run share label and workload
    assert spreads["naive · ci-mixed"].n == 1
