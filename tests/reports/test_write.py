"""The report from saved runs: every section, figure and number where it belongs; escaping,
determinism, empty frames and null fields, bad input, atomic writes, no network references."""

from __future__ import annotations

import html
import os
from html.parser import HTMLParser

import numpy as np
import pytest
from plotly.offline import get_plotlyjs

import reports.write
from bench.metrics import SLO, summarize
from bench.results import ResultError
from reports import render_report, write_report
from reports.html import fmt_num, fmt_pct
from tests.reports.synthetic_runs import MS, figure_specs, values


def test_report_has_every_section_and_one_figure_per_expected_view(ladder, tmp_path):
    out = write_report(ladder, tmp_path / "report.html")
    page = out.read_text(encoding="utf-8")
    for section in ("summary", "latency", "throughput", "waste", "roofline", "timelines", "consistency",
                    "manifests"):
        assert f'<section id="{section}">' in page
    assert '<section id="sweeps">' not in page and '<section id="verdict">' not in page
    # 4 CDFs, 3 throughput bars (no SLO: no goodput), waste, a timeline for each run that has
    # steps or device samples (hf-generate has neither)
    specs = figure_specs(page)
    assert len(specs) == 4 + 3 + 1 + 4
    assert f'data-expected="{len(specs)}"' in page
    assert page.count('class="figure"') == len(specs)
    assert page.count(get_plotlyjs()) == 1
    assert "hf-generate: no timeline: no step stats" in page
    assert "No step stats for hf-generate" in page
    assert "No roofline for naive, static, continuous, paged, hf-generate" in page


def test_cdf_lines_are_the_runs_raw_latencies(ladder):
    page = render_report(ladder)
    ttft = next(s for s in figure_specs(page).values() if s["layout"]["title"]["text"] == "TTFT (ms)")
    assert [t["name"] for t in ttft["data"]] == ["naive", "static", "continuous", "paged", "hf-generate"]
    for run, trace in zip(ladder, ttft["data"]):
        req = run.requests
        expected = np.sort((req["first_token_ns"].astype(float) - req["send_ns"]).to_numpy() / MS)
        np.testing.assert_allclose(values(trace["x"]), expected, rtol=1e-6)  # float32 on the page
        np.testing.assert_allclose(values(trace["y"]), np.arange(1, 41) / 40, rtol=1e-6)


def test_summary_table_shows_failures_next_to_latency_and_flags_the_run(make_run):
    runs = [make_run("paged", failed={"error": 3, "timeout": 1}), make_run("static", seed=1)]
    page = render_report(runs)
    assert "paged: 3 error, 1 timeout of 40 requests did not finish ok" in page
    latency_table = page[page.index("Latency percentiles"):page.index("Engine and device")]
    paged_row = latency_table[latency_table.index("<tr", latency_table.index("<tbody>")):]
    assert paged_row.startswith('<tr class="bad"><td>paged</td><td>36</td><td>4</td>')
    assert "<tr><td>static</td><td>40</td><td>0</td>" in latency_table


def test_device_source_is_explained(make_run):
    page = render_report([make_run("paged", device="nvml"), make_run("paged-cpu", device="cpu")])
    assert "NVML utilization.gpu: the share of each sample period in which any kernel ran" in page
    assert "It is not SM occupancy" in page
    assert "paged-cpu is from source “cpu”: no GPU: system-wide CPU busy percent" in page


def test_same_inputs_give_the_same_bytes(ladder, tmp_path):
    from bench.results import load_run

    first = write_report(ladder, tmp_path / "a.html").read_bytes()
    again = write_report([load_run(r.path) for r in ladder], tmp_path / "b.html").read_bytes()
    assert first == again


def test_text_from_files_is_escaped(make_run):
    evil = '<script>alert("label")</script>'
    run = make_run(evil, engine="paged", notes='<img src=x onerror=alert(1)>',
                   manifest_extra={"run": {"status": "failed", "error": "</td><b>boom</b>"}})
    page = render_report([run], title="<i>title</i>", verdict={"markdown": "<b>md</b>", "rows": [{"<k>": "<v>"}]})
    for raw in (evil, "<img src=x", "<b>boom</b>", "<i>title</i>", "<b>md</b>", "<k>", "<v>"):
        assert raw not in page
    assert html.escape(evil) in page  # in tables and headings
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;boom&lt;/b&gt;" in page
    # plotly renders a little HTML in trace names: the name is escaped there too
    names = {t.get("name") for s in figure_specs(page).values() for t in s["data"]}
    assert html.escape(evil) in names and evil not in names


def test_empty_frames_and_null_summary_fields_give_notes_not_crashes(make_run):
    nothing = make_run("all-failed", steps=False, device=None, failed={"error": 30, "rejected": 10})
    assert nothing.summary["ttft_ms"] is None and nothing.summary["duration_s"] is None
    bare = make_run("bare", steps=False, device=None)
    bare.summary = {"format_version": 1, "counts": {"total": 40, "ok": 40}}  # every other key absent
    page = render_report([nothing, bare])
    assert "all-failed: no timeline: no step stats" in page and "and no device samples" in page
    assert "No values for all-failed" in page
    assert "No step stats for all-failed, bare" in page
    assert "<td>all-failed</td><td>0</td><td>40</td>" + "<td>–</td>" * 12 in page


def test_sweeps_become_curves_ordered_by_the_swept_value(make_run):
    runs = []
    for label, seed in (("paged", 0), ("static", 10)):
        for i, rate in enumerate((4, 1, 2)):  # out of order on purpose
            runs.append(make_run(label, workload="poisson", seed=seed + i,
                                 sweep={"name": "rates", "variable": "rate", "value": rate}))
    page = render_report(runs)
    assert "Every run is a sweep point" in page
    specs = figure_specs(page)
    ttft = next(s for s in specs.values() if s["layout"]["title"]["text"] == "TTFT vs achieved throughput")
    assert [t["name"] for t in ttft["data"]] == ["paged · rates p50", "paged · rates p99",
                                                "static · rates p50", "static · rates p99"]
    paged = sorted(runs[:3], key=lambda r: r.manifest["sweep"]["value"])
    p50 = ttft["data"][0]
    assert p50["x"] == [r.summary["output_tok_per_s"] for r in paged]
    assert p50["y"] == [r.summary["ttft_ms"]["p50"] for r in paged]
    assert p50["text"] == ["rate=1", "rate=2", "rate=4"]
    request_axis = ttft["layout"]["updatemenus"][0]["buttons"][1]["args"][0]["x"]
    assert request_axis[0] == [r.summary["request_per_s"] for r in paged]


def test_verdict_rows_become_a_table(ladder):
    verdict = {"markdown": "## Verdict\nno regression", "rows": [
        {"label": "paged", "metric": "output_tok_per_s", "baseline": 930.0, "current": 744.0, "mark": "worse"},
        {"label": "static", "metric": "ttft_ms.p99", "baseline": 140.0, "current": 139.0,
         "mark": "no significant change", "note": "within noise"},
    ]}
    page = render_report(ladder, verdict=verdict)
    assert page.index('<section id="verdict">') < page.index('<section id="summary">')
    section = page[page.index('<section id="verdict">'):page.index('<section id="summary">')]
    assert "<th>label</th><th>metric</th><th>baseline</th><th>current</th><th>mark</th><th>note</th>" in section
    assert '<tr class="worse"><td>paged</td><td>output_tok_per_s</td><td>930.0</td><td>744.0</td>' in section
    assert "<td>within noise</td>" in section and "## Verdict\nno regression" in section
    with pytest.raises(TypeError, match="rows"):
        render_report(ladder, verdict={"markdown": "", "rows": "paged worse"})
    assert "<h2>Regression verdict</h2>" in section  # the default title
    titled = render_report(ladder, verdict={**verdict, "title": "A/B against continuous"})
    assert "<h2>A/B against continuous</h2>" in titled and "<h2>Regression verdict</h2>" not in titled
    with pytest.raises(TypeError, match="title"):
        render_report(ladder, verdict={**verdict, "title": 3})


def test_consistency_and_roofline_are_shown(make_run):
    roofline = {"t_min_s": 0.5, "bound": "memory", "flops": 2e12, "bytes": 4e12, "efficiency": 0.25,
                "ceilings": {"bw_bytes_per_s": 4.265e12, "flops_per_s": 7.99e14, "source": "measured"}}
    # the shape bench.consistency / bench.consistency_fill write
    consistency = {"reference": "naive", "reference_run": "000-naive", "requests_compared": 40, "requests_equal": 38,
                   "token_agreement": 0.991, "requests_skipped": {"not_ok": 2, "no_token_ids": 0},
                   "first_mismatches": [{"request_id": "req-7", "position": 12, "reference_token": 5, "token": 9},
                                        {"request_id": "req-9", "position": 30, "reference_token": 4, "token": None}]}
    reference = make_run("naive", summary_extra={"consistency": {"reference": "naive", "is_reference": True}})
    run = make_run("paged", summary_extra={"roofline": roofline, "consistency": consistency})
    page = render_report([reference, run])
    assert "<td>naive</td><td>this run</td>" in page and "<td>the reference</td>" in page
    assert "<td>paged</td><td>naive</td><td>40</td><td>38</td><td>95.0 %</td><td>99.1 %</td><td>2 not ok</td>" in page
    assert "<div>req-7 at token 12: reference 5, this run 9</div>" in page
    assert "<div>req-9 at token 30: reference 4, this run ended</div>" in page
    # a file from before the bound of the engine's own steps: its cells are empty, no bar
    assert "<td>paged</td><td>0.500</td><td>2.00</td><td>25.0 %</td><td>–</td><td>–</td><td>–</td><td>memory</td>" in page
    assert "<td>4,265</td><td>799</td><td>measured</td>" in page
    assert "No roofline for naive:" in page
    bars = next(s for s in figure_specs(page).values()
                if s["layout"]["title"]["text"] == "Lower bound vs measured run time")
    assert [list(values(t["y"])) for t in bars["data"]] == [[0.5], [2.0]]

    own = {"t_min_s": 1.25, "efficiency": 0.625, "schedule_efficiency": 0.4, "steps": 10,
           "compute_bound_steps": 3, "flops": 1e12, "bytes": 3e12}
    run = make_run("paged", summary_extra={"roofline": {**roofline, "steps_bound": own}})
    page = render_report([run])
    assert "<td>paged</td><td>0.500</td><td>2.00</td><td>25.0 %</td><td>1.25</td><td>40.0 %</td><td>62.5 %</td>" in page
    bars = next(s for s in figure_specs(page).values()
                if s["layout"]["title"]["text"] == "Lower bound vs measured run time")
    assert [list(values(t["y"])) for t in bars["data"]] == [[0.5], [1.25], [2.0]]


def test_load_generator_limits_are_flagged(make_run):
    load = {"mode": "open", "offered_rate_req_per_s": 200.0, "achieved_rate_req_per_s": 150.0,
            "achieved_over_offered": 0.75, "send_lag_ms": {"p50": 0.4, "p99": 12.5, "max": 40.0},
            "client_cpu_busy_pct_max": 97.0, "generator_limited": True,
            "warnings": ["p99 send lag 12.50 ms > 5 ms", "load generator master was 97% busy"]}
    page = render_report([make_run("openai", summary_extra={"load": load}), make_run("paged", seed=1)])
    assert ("openai: the load generator, not the server, was the limit: p99 send lag 12.50 ms &gt; 5 ms; "
            "load generator master was 97% busy") in page
    assert ('<tr class="bad"><td>openai</td><td>200</td><td>150</td><td>75.0 %</td><td>0.400</td>'
            "<td>12.5</td><td>40.0</td><td>97.0</td><td>yes</td></tr>") in page
    assert "<td>paged</td><td>200</td>" not in page  # in-process runs have no fidelity row


def test_manifest_facts_are_listed(make_run):
    run = make_run("paged", manifest_extra={"harness": {"version": "0.1.0", "git_commit": "abc123", "git_dirty": True}})
    page = render_report([run])
    details = page[page.index('<section id="manifests">'):]
    assert "<summary>paged — 000-paged — uncommitted changes</summary>" in details
    for fact in ("<td>harness</td><td>0.1.0 at abc123 (uncommitted changes)</td>",
                 '<td>engine options</td><td>{&quot;max_batch&quot;: 32}</td>',
                 "<td>workload</td><td>quick (offline), content hash sha256:feedface</td>",
                 "<td>model</td><td>tiny · float32 · cpu · 1,234,567 parameters</td>",
                 "<td>GPU</td><td>NVIDIA H200 × 1, driver 570, CUDA 12.8</td>"):
        assert fact in details
    assert "&quot;hostname&quot;: &quot;testhost&quot;" in details  # the whole manifest, one click away


def test_bad_input_is_named(make_run):
    with pytest.raises(ValueError, match="no runs"):
        render_report([])
    odd = make_run("paged", sweep={"name": "s", "variable": "qps", "value": 1})
    with pytest.raises(ResultError, match=r"manifest\.json: sweep\.variable is 'qps', expected one of rate"):
        render_report([odd])
    broken = make_run("paged")
    broken.summary["ttft_ms"]["p50"] = "fast"
    with pytest.raises(ResultError, match=r"summary\.json: ttft_ms\.p50 is 'fast', expected a number"):
        render_report([broken])


def test_write_is_atomic(ladder, tmp_path, monkeypatch):
    out = tmp_path / "report.html"
    out.write_text("previous report")

    def refuse(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(reports.write.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_report(ladder, out)
    assert out.read_text() == "previous report"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "runs"]
    monkeypatch.undo()
    with pytest.raises(ValueError):
        write_report([], tmp_path / "never.html")
    assert not (tmp_path / "never.html").exists()
    write_report(ladder, out)
    assert out.read_text().startswith("<!DOCTYPE html>") and os.stat(out).st_mode & 0o044


class _References(HTMLParser):
    """Every attribute that could make a browser fetch something, and every <link>."""

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []
        self.links = 0
        self.scripts_with_src = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += tag == "link"
        self.scripts_with_src += tag == "script" and "src" in attrs
        self.urls += [v for k, v in attrs.items() if k in ("src", "href", "xlink:href", "action", "srcset") and v]


def test_page_references_nothing_on_the_network(ladder):
    page = render_report(ladder)
    parser = _References()
    parser.feed(page)
    assert parser.links == 0 and parser.scripts_with_src == 0
    assert parser.urls and all(u.startswith("#") for u in parser.urls)  # the table of contents only
    style = page[page.index("<style>"):page.index("</style>")]
    assert "url(" not in style and "@import" not in style
    assert '"typesetMath": false' in page  # plotly never reaches for MathJax


def test_summaries_from_bench_metrics_render(make_run):
    """The keys the report reads are the ones bench.metrics.summarize writes."""
    runs = [make_run("paged", failed={"timeout": 2}), make_run("static", seed=1, steps=False)]
    for run in runs:
        run.summary = summarize(run.requests, run.steps, run.device, slo=SLO(ttft_ms=100.0))
    page = render_report(runs)
    paged = runs[0].summary
    row = (f"<tr class=\"bad\"><td>paged</td><td>quick</td><td>38</td><td>0</td><td>2</td><td>0</td><td>0</td>"
           f"<td>{fmt_num(paged['duration_s'])}</td><td>{fmt_num(paged['output_tok_per_s'])}</td>")
    assert row in page
    assert f"<td>{fmt_num(paged['goodput_req_per_s'])}</td><td>{fmt_pct(paged['slo_attainment'])}</td>" in page
    assert "paged: goodput counts ok requests meeting every SLO (ttft_ms ≤ 100.0)." in page
    titles = [s["layout"]["title"]["text"] for s in figure_specs(page).values()]
    assert "Goodput" in titles and "Timeline: paged" in titles and "Timeline: static" in titles


def test_device_files_from_before_the_power_cap_column_load(make_run):
    """device.parquet written before `power_capped` existed loads with the column as None;
    a column the format always had is still required by name."""
    import pandas as pd

    from bench.results import load_run

    run = make_run("paged")
    path = run.path / "device.parquet"
    frame = pd.read_parquet(path)
    frame.drop(columns="power_capped").to_parquet(path, index=False)
    old = load_run(run.path)
    assert "power_capped" in old.device.columns and old.device["power_capped"].isna().all()
    assert len(old.device) == len(frame)
    frame.drop(columns=["power_capped", "power_w"]).to_parquet(path, index=False)
    with pytest.raises(ResultError, match=r"device\.parquet: missing columns \['power_w'\]"):
        load_run(run.path)


def test_phases_are_drawn_stacked_beside_their_bound(make_run):
    roofline = {"t_min_s": 0.5, "bound": "memory", "flops": 2e12, "bytes": 4e12, "efficiency": 0.25,
                "ceilings": {"bw_bytes_per_s": 4.265e12, "flops_per_s": 7.99e14, "source": "measured"}}
    phases = [{"phase": "prompt steps", "steps": 18, "positions": 140434, "time_s": 1.0, "bound_s": 0.8},
              {"phase": "decode, 1-49", "steps": 106, "positions": 2257, "time_s": 0.5, "bound_s": 0.25}]
    own = {"t_min_s": 1.05, "efficiency": 0.7, "schedule_efficiency": 0.48, "steps": 124,
           "compute_bound_steps": 18, "flops": 1e12, "bytes": 3e12, "device_s": 1.5,
           "time_source": "device", "phases": phases}
    with_phases = make_run("paged", summary_extra={"roofline": {**roofline, "steps_bound": own}})
    older = make_run("continuous", seed=1, summary_extra={"roofline": roofline})  # no steps' bound
    page = render_report([with_phases, older])
    bars = next(s for s in figure_specs(page).values()
                if s["layout"]["title"]["text"] == "Where the time went, phase by phase")
    assert bars["layout"]["barmode"] == "stack" and bars["layout"]["legend"]["traceorder"] == "normal"
    assert [t["name"] for t in bars["data"]] == ["prompt steps", "decode, 1-49"]
    assert [list(values(t["y"])) for t in bars["data"]] == [[1.0, 0.8], [0.5, 0.25]]  # measured, bound
    assert "<td>paged</td><td>decode, 1-49</td><td>106</td><td>2,257</td><td>0.500</td><td>0.250</td><td>50.0 %</td>" in page
    assert "each step&#x27;s time on the device" in page or "each step's time on the device" in page
    assert "<td>continuous</td><td>prompt steps</td>" not in page


def test_every_phase_of_any_run_is_drawn(make_run):
    """Runs with different phases (a padded engine never decodes 200+ requests at once): each
    phase is drawn once, in the ladder's order, with a gap where a run has none of it."""
    def run(label, names, seed):
        phases = [{"phase": n, "steps": 1, "positions": 10, "time_s": 1.0, "bound_s": 0.5} for n in names]
        own = {"t_min_s": 1.0, "efficiency": 0.5, "schedule_efficiency": 0.5, "steps": 2, "compute_bound_steps": 1,
               "flops": 1.0, "bytes": 1.0, "device_s": None, "time_source": "host", "phases": phases}
        roofline = {"t_min_s": 0.5, "bound": "compute", "flops": 1.0, "bytes": 1.0, "efficiency": 0.25,
                    "ceilings": {"bw_bytes_per_s": 1.0, "flops_per_s": 1.0, "source": "user"}, "steps_bound": own}
        return make_run(label, seed=seed, summary_extra={"roofline": roofline})

    page = render_report([run("naive", ["prompt steps", "decode, 1-49"], 0),
                          run("paged", ["prompt steps", "decode, 200+ requests"], 1)])
    bars = next(s for s in figure_specs(page).values()
                if s["layout"]["title"]["text"] == "Where the time went, phase by phase")
    assert [t["name"] for t in bars["data"]] == ["prompt steps", "decode, 200+ requests", "decode, 1-49"]
    assert np.isnan(values(bars["data"][1]["y"])).tolist() == [True, True, False, False]  # naive has none
    assert "intervals between the steps" in page
