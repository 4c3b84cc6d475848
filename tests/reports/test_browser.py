"""The report in a real browser: headless Chromium loads the page from disk, the page's own
script records how many figures drew and every error, and the test reads that back from the
dumped DOM. Skipped only where /usr/bin/chromium is absent (CI installs it)."""

from __future__ import annotations

import json
import re

import pytest
from plotly.offline import get_plotlyjs

from reports import render_report
from tests.reports.chromium import CHROMIUM, open_in_chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs headless Chromium at /usr/bin/chromium"),
]


def _expected_figures(page: str) -> int:
    return len(re.findall(r'<div class="figure" id="fig-\d+" data-figure=', page))


def test_every_figure_draws_without_errors(ladder, make_run, tmp_path):
    sweep = [make_run("paged", workload="poisson", seed=20 + i,
                      sweep={"name": "rates", "variable": "rate", "value": r}) for i, r in enumerate((1, 2, 4))]
    roofline = {"t_min_s": 0.5, "bound": "memory", "flops": 2e12, "bytes": 4e12, "efficiency": 0.25,
                "ceilings": {"bw_bytes_per_s": 4.2e12, "flops_per_s": 8e14, "source": "measured"},
                "steps_bound": {"t_min_s": 1.0, "efficiency": 0.5, "schedule_efficiency": 0.5, "steps": 3,
                                "compute_bound_steps": 1, "flops": 1e12, "bytes": 3e12, "device_s": 1.9,
                                "time_source": "device",
                                "phases": [{"phase": "prompt steps", "steps": 1, "positions": 100,
                                            "time_s": 1.2, "bound_s": 0.7},
                                           {"phase": "decode, 1-49", "steps": 2, "positions": 6,
                                            "time_s": 0.7, "bound_s": 0.3}]}}
    ladder[3].summary["roofline"] = roofline
    ladder[3].summary["slo"] = {"ttft_ms": 120, "tpot_ms": None, "e2e_ms": None}
    ladder[3].summary["goodput_req_per_s"] = 20.5
    page = render_report(ladder + sweep, verdict={"markdown": "ok", "rows": [{"metric": "x", "mark": "better"}]})
    expected = _expected_figures(page)
    # CDFs, bars with goodput, sweeps, waste, roofline and its phases, timelines
    assert expected == 4 + 4 + 2 + 1 + 2 + 7
    drawn = open_in_chromium(page, tmp_path)
    assert json.loads(drawn.status["data-errors"]) == []
    assert drawn.status["data-done"] == "true"
    assert int(drawn.status["data-expected"]) == expected
    assert int(drawn.status["data-drawn"]) == expected and drawn.status["data-failed"] == "0"
    assert len(drawn.figures) == expected
    assert all(f == {"drawn": "true", "svg": True} for f in drawn.figures.values()), drawn.figures


def test_missing_plotly_is_reported(make_run, tmp_path):
    page = render_report([make_run("paged")])
    assert page.count(get_plotlyjs()) == 1
    drawn = open_in_chromium(page.replace(get_plotlyjs(), ""), tmp_path)
    assert drawn.status["data-drawn"] == "0"
    assert json.loads(drawn.status["data-errors"]) == ["plotly.js is missing: no figure can be drawn"]
    assert not any(f["svg"] for f in drawn.figures.values())


def _replace_spec(page: str, figure: str, text: str) -> str:
    start = page.index(f'<script type="application/json" id="{figure}-spec">')
    end = page.index("</script>", start)
    return page[:start] + f'<script type="application/json" id="{figure}-spec">{text}' + page[end:]


def test_broken_figures_are_reported_and_the_others_still_draw(make_run, tmp_path):
    page = render_report([make_run("paged"), make_run("static", seed=1)])
    expected = _expected_figures(page)
    broken = _replace_spec(page, "fig-2", '{"data": [{"x": [1, 2')  # cut short: not JSON
    broken = _replace_spec(broken, "fig-3", '{"layout": {}}')  # JSON, but no data
    drawn = open_in_chromium(broken, tmp_path)
    errors = json.loads(drawn.status["data-errors"])
    assert len(errors) == 2 and errors[0].startswith("fig-2: ")
    assert errors[1] == "fig-3: figure spec has no data list or no layout"
    assert drawn.status["data-failed"] == "2" and drawn.status["data-done"] == "true"
    assert int(drawn.status["data-drawn"]) == expected - 2
    assert drawn.figures["fig-2"] == drawn.figures["fig-3"] == {"drawn": "failed", "svg": False}
    assert all(f == {"drawn": "true", "svg": True} for name, f in drawn.figures.items()
               if name not in ("fig-2", "fig-3"))


def test_script_errors_reach_the_marker(make_run, tmp_path):
    page = render_report([make_run("paged")])
    broken = page.replace("</body>", "<script>notDefinedAnywhere();</script></body>")
    drawn = open_in_chromium(broken, tmp_path)
    errors = json.loads(drawn.status["data-errors"])
    assert len(errors) == 1 and "notDefinedAnywhere" in errors[0]
    assert drawn.status["data-failed"] == "0"  # the figures themselves drew
