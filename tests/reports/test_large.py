"""A large run: 100,000 requests of 10-50 tokens each (3 million token times) and 200,000 engine
steps. The report must stay a few MB (CDFs from at most 1000 quantiles, timelines of at most
1500 bins) and take seconds. The measured time is printed (pytest -s) and quoted in
docs/reports.md; it is not asserted, since a shared CI machine's speed is not ours."""

from __future__ import annotations

import time

import numpy as np
import pytest

from bench.results import load_run, write_run
from reports import write_report
from reports.sections.latency import MAX_POINTS
from reports.sections.timeline import MAX_BINS
from tests.reports.chromium import CHROMIUM, open_in_chromium
from tests.reports.synthetic_runs import (
    figure_specs,
    manifest_for,
    summary_for,
    synthetic_device,
    synthetic_requests,
    synthetic_steps,
    values,
)

N_REQUESTS = 100_000
N_STEPS = 200_000
MAX_BYTES = 6_000_000  # plotly.js alone is 4.8 MB


@pytest.fixture(scope="module")
def large_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("large")
    rng = np.random.default_rng(0)
    requests = synthetic_requests(N_REQUESTS, rng, failed={"timeout": 50})
    end = int(requests["finish_ns"].max())
    steps, device = synthetic_steps(N_STEPS, rng, end, padded=True), synthetic_device(end)
    write_run(tmp / "paged__large", manifest_for("paged", "paged", "large"), requests, steps, device,
              summary_for(requests, steps, device))
    run = load_run(tmp / "paged__large")
    started = time.perf_counter()
    out = write_report([run], tmp / "report.html")
    elapsed = time.perf_counter() - started
    print(f"\nreport of {N_REQUESTS:,} requests and {N_STEPS:,} steps: {elapsed:.2f} s, "
          f"{out.stat().st_size / 1e6:.2f} MB")
    return run, out


def test_large_report_stays_small(large_report):
    run, out = large_report
    assert out.stat().st_size < MAX_BYTES
    page = out.read_text(encoding="utf-8")
    specs = figure_specs(page)
    cdfs = [s for s in specs.values() if s["layout"]["title"]["text"].endswith("(ms)")]
    timeline = next(s for s in specs.values() if s["layout"]["title"]["text"].startswith("Timeline"))
    assert len(cdfs) == 4
    assert all(len(values(t["x"])) == MAX_POINTS for s in cdfs for t in s["data"])
    device = ("util", "SM clock", "power-capped")  # one trace per device, from the sampler's readings
    steps_traces = [t for t in timeline["data"] if not t["name"].startswith(device)]
    assert len(steps_traces) == 9 and all(len(values(t["x"])) == MAX_BINS for t in steps_traces)


def test_large_cdfs_still_read_true_percentiles(large_report):
    run, out = large_report
    specs = figure_specs(out.read_text(encoding="utf-8"))
    for title, key in (("ITL (ms)", "itl_ms"), ("TTFT (ms)", "ttft_ms")):
        trace = next(s for s in specs.values() if s["layout"]["title"]["text"] == title)["data"][0]
        x, y = values(trace["x"]).astype(float), values(trace["y"]).astype(float)
        for p in ("p50", "p99"):
            read = np.interp(float(p[1:]) / 100, y, x)
            assert read == pytest.approx(run.summary[key][p], rel=0.01), (title, p)


def test_large_timeline_means_match_the_steps(large_report):
    run, out = large_report
    specs = figure_specs(out.read_text(encoding="utf-8"))
    timeline = next(s for s in specs.values() if s["layout"]["title"]["text"].startswith("Timeline"))
    padded = next(t for t in timeline["data"] if t["name"] == "padded")
    # equal-width bins over steady steps: the mean of the bin means is close to the step mean
    assert np.nanmean(values(padded["y"])) == pytest.approx(run.steps["padded_tokens"].mean(), rel=0.02)


@pytest.mark.browser
@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium")
def test_large_report_draws_in_a_browser(large_report, tmp_path):
    run, out = large_report
    page = out.read_text(encoding="utf-8")
    drawn = open_in_chromium(page, tmp_path)
    assert drawn.status["data-errors"] == "[]" and drawn.status["data-done"] == "true"
    assert int(drawn.status["data-drawn"]) == len(figure_specs(page)) == len(drawn.figures)
    assert all(f["svg"] for f in drawn.figures.values())
