"""The `bench` CLI end to end on the mock engine: run, compare, sweep, report, list, and how
bad input and interruptions end."""

from __future__ import annotations

import json
import sys

import pytest

import bench.session
from bench.cli import main
from bench.commands.options import run_options_from_args, split_specs
from bench.compare import compare, plan_compare
from bench.isolate import run_argv
from bench.metrics import SLO
from bench.results import load_run
from bench.session import RunOptions
from engines.mock import MockEngine
from engines.registry import create_engine
from tests.bench.helpers import FAST, SMALL


def test_bench_run_writes_a_result_directory(tmp_path, capsys):
    out = tmp_path / "one"
    code = main(["run", "--engine", "mock:step_time_s=0.0005", "--workload", SMALL, "--out", str(out), *FAST])
    assert code == 0
    for name in ("manifest.json", "requests.parquet", "steps.parquet", "device.parquet", "summary.json"):
        assert (out / name).is_file()
    run = load_run(out)
    assert run.label == "mock:step_time_s=0.0005"
    assert run.manifest["run"]["status"] == "complete"
    assert run.manifest["engine"]["options"]["step_time_s"] == 0.0005
    assert run.manifest["workload"]["num_requests"] == 6 == len(run.requests)
    assert run.manifest["device_sampler"]["source"] == "cpu"
    assert run.summary["counts"]["ok"] == 6
    assert not run.steps.empty and not run.device.empty
    printed = capsys.readouterr().out
    assert "mock:step_time_s=0.0005" in printed and "out tok/s" in printed and str(out) in printed


def test_bench_compare_end_to_end(tmp_path, capsys):
    out = tmp_path / "cmp"
    code = main([
        "compare", "--engines", "mock,mock:max_batch=2,step_time_s=0.0005",
        "--workloads", SMALL, "--out", str(out), "--slo-ttft-ms", "1000", *FAST,
    ])
    assert code == 0
    dirs = sorted(p.name for p in out.iterdir() if p.is_dir())
    wname = "quick_num_requests=6_output=uniform_2_12"
    assert dirs == sorted([f"mock__{wname}", f"mock_max_batch=2_step_time_s=0.0005__{wname}"])
    assert (out / "report.html").stat().st_size > 10_000
    ref, other = load_run(out / dirs[0]), load_run(out / dirs[1])
    assert ref.label == "mock" and ref.summary["consistency"] == {"reference": "mock", "is_reference": True}
    c = other.summary["consistency"]
    # the mock's tokens depend only on the prompt: batching differently changes nothing
    assert c["reference"] == "mock" and c["requests_compared"] == 6 == c["requests_equal"]
    assert c["token_agreement"] == 1.0
    assert other.summary["slo"]["ttft_ms"] == 1000.0
    printed = capsys.readouterr().out
    assert "TTFT p50 ms" in printed and f"report: {out / 'report.html'}" in printed


def test_compare_reports_disagreeing_outputs(tmp_path):
    class Shifted(MockEngine):
        name = "mock"

        def _token(self, request, index):
            return super()._token(request, index) + (1 if index == 3 else 0)

    def fake_create(name, model="tiny", **kw):
        return Shifted(**{k: v for k, v in kw.items() if k not in ("seed", "device", "dtype")}) if kw.get("max_batch") == 2 else create_engine(name, model, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(bench.session, "create_engine", fake_create)
    try:
        result = compare(
            ["mock", "mock:max_batch=2"], ["quick:num_requests=4,output=fixed(8)"], out_dir=tmp_path / "c",
            options=RunOptions(progress=False, roofline=False),
        )
    finally:
        mp.undo()
    c = result.runs[1].summary["consistency"]
    assert c["requests_compared"] == 4 and c["requests_equal"] == 0
    assert c["token_agreement"] == pytest.approx(7 / 8)
    assert c["first_mismatches"][0]["position"] == 3
    assert json.loads((result.runs[1].path / "summary.json").read_text())["consistency"]["requests_equal"] == 0


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--engine", "nope"], "unknown engine 'nope'"),
        (["compare", "--engines", "mock,nope"], "unknown engine 'nope'"),
        (["run", "--engine", "mock", "--workload", "no-such-preset"], "'no-such-preset' is not a preset"),
        (["compare", "--engines", "mock", "--workloads", "quick:num_requets=3"], "did you mean 'num_requests'"),
        (["run", "--engine", "mock:max_batch"], "expected KEY=VALUE, got 'max_batch'"),
        (["run", "--engine", "mock:colour=red"], "unknown options ['colour']"),
        (["run", "--engine", "mock", "--engine-opt", "oops"], "expected KEY=VALUE"),
        (["report", "/no/such/dir"], "no such result directory"),
        (["compare", "--engines", "mock", "mock"], "both be labelled 'mock'"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, argv, message):
    if argv[0] in ("run", "compare"):
        argv = [*argv, "--out", str(tmp_path / "out"), *FAST]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_bad_option_values_exit_2_from_argparse(capsys):
    for argv in (["run", "--engine", "mock", "--kv-memory", "2G"], ["run", "--engine", "mock", "--timeout-s", "-1"]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 2
    assert "must be a positive number" in capsys.readouterr().err


def test_existing_out_dir_is_refused(tmp_path, capsys):
    (tmp_path / "taken").mkdir()
    assert main(["run", "--engine", "mock", "--out", str(tmp_path / "taken"), *FAST]) == 2
    assert "already exists" in capsys.readouterr().err


def test_interrupted_compare_keeps_finished_and_partial_runs(tmp_path, capsys, exploding_engine):
    out = tmp_path / "cmp"
    code = main(["compare", "--engines", "mock,boom,mock:max_batch=3", "--workloads", "quick:num_requests=6,output=fixed(5)",
                 "--out", str(out), "--warmup-requests", "0", "--no-progress", "--no-roofline"])
    assert code == 130
    names = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert names == ["boom__quick_num_requests=6_output=fixed_5", "mock__quick_num_requests=6_output=fixed_5"]
    partial = load_run(out / names[0])
    assert partial.manifest["run"]["status"] == "interrupted"
    assert partial.summary["counts"]["cancelled"] == 6  # 3 steps of 5 tokens: nothing finished
    assert (out / "report.html").exists()  # written from what exists
    assert "boom [interrupted]" in capsys.readouterr().out


def test_failed_run_is_written_and_exit_code_is_1(tmp_path, capsys, exploding_engine):
    out = tmp_path / "r"
    assert main(["run", "--engine", "crash", "--workload", "quick:num_requests=4,output=fixed(2)", "--out", str(out),
                 "--warmup-requests", "0", "--no-progress"]) == 1
    run = load_run(out)
    assert run.manifest["run"]["status"] == "failed"
    assert run.manifest["run"]["error"] == "RuntimeError: device lost"
    assert "device lost" in run.manifest["run"]["traceback"]
    assert run.summary["counts"]["ok"] == 2  # max_batch 2, two tokens each: the first pair finished
    captured = capsys.readouterr()
    assert "run failed: RuntimeError: device lost" in captured.out and "Traceback" in captured.err


def test_sweep_tags_each_point(tmp_path, capsys):
    out = tmp_path / "sw"
    code = main(["sweep", "--engines", "mock:step_time_s=0.0005", "--workload", "quick:num_requests=5,output=fixed(3)",
                 "--rates", "200,400", "--out", str(out), *FAST])
    assert code == 0
    runs = {p.name: load_run(p) for p in out.iterdir() if p.is_dir()}
    assert sorted(runs) == ["mock_step_time_s=0.0005__quick__rate-200", "mock_step_time_s=0.0005__quick__rate-400"]
    for name, run in runs.items():
        rate = 200 if name.endswith("200") else 400
        assert run.manifest["sweep"] == {"name": "quick-rate", "variable": "rate", "value": rate}
        assert run.manifest["workload"]["mode"] == "open"
        assert run.manifest["workload"]["spec"]["arrival"] == f"poisson({rate})"
    # the same prompts at every point; the same arrival draws, twice as dense at twice the rate
    slow, fast = runs["mock_step_time_s=0.0005__quick__rate-200"], runs["mock_step_time_s=0.0005__quick__rate-400"]
    assert slow.requests["prompt_tokens"].tolist() == fast.requests["prompt_tokens"].tolist()
    ratio = slow.requests["arrival_ns"].to_numpy()[1:] / fast.requests["arrival_ns"].to_numpy()[1:]
    assert ratio == pytest.approx(2.0, rel=1e-5)  # up to rounding to whole ns
    assert (out / "report.html").exists()


def test_concurrency_sweep(tmp_path):
    out = tmp_path / "sw"
    assert main(["sweep", "--engines", "mock", "--workload", "quick:num_requests=6,output=fixed(3)",
                 "--concurrency", "1,3", "--out", str(out), *FAST]) == 0
    run = load_run(out / "mock__quick__concurrency-3")
    assert run.manifest["workload"]["mode"] == "closed" and run.manifest["workload"]["concurrency"] == 3
    assert run.summary["concurrency_peak"] <= 3
    assert main(["sweep", "--engines", "mock", "--concurrency", "1.5", "--out", str(tmp_path / "x"), *FAST]) == 2


def test_report_rebuilds_from_saved_runs(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert main(["compare", "--engines", "mock", "--workloads", SMALL, "--out", str(out), *FAST]) == 0
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0
    assert (out / "report.html").exists()
    target = tmp_path / "elsewhere" / "r.html"
    assert main(["report", str(next(p for p in out.iterdir() if p.is_dir())), "-o", str(target), "--title", "T"]) == 0
    assert "<title>T" in target.read_text()


@pytest.mark.parametrize("what, expected", [("engines", "paged"), ("workloads", "long-tail"), ("models", "tiny")])
def test_list(capsys, what, expected):
    assert main(["list", what]) == 0
    assert expected in capsys.readouterr().out


def test_common_options_reach_the_engine():
    from bench.cli import build_parser

    args = build_parser().parse_args([
        "compare", "--max-batch", "8", "--kv-memory", "2GiB", "--no-prefix-caching", "--block-size", "32",
        "--engine-opt", "use_cuda_graph=true", "--engine-opt", "note=hi", "--slo-tpot-ms", "50", "--timeout-s", "3",
    ])
    options = run_options_from_args(args)
    assert options.engine_options == {
        "max_batch": 8, "kv_memory": 2 * 2**30, "prefix_caching": False, "block_size": 32,
        "use_cuda_graph": True, "note": "hi",
    }
    assert options.slo == SLO(tpot_ms=50.0) and options.timeout_s == 3.0
    clash = build_parser().parse_args(["run", "--engine", "x", "--max-batch", "8", "--engine-opt", "max_batch=4"])
    with pytest.raises(Exception, match="repeats an option"):
        run_options_from_args(clash)


def test_split_specs_keeps_options_with_their_engine():
    assert split_specs(["naive,paged:block_size=32,prefix_caching=true", "static"]) == [
        "naive", "paged:block_size=32,prefix_caching=true", "static"]
    assert split_specs(["paged,openai:url=http://127.0.0.1:8000,model=x"]) == ["paged", "openai:url=http://127.0.0.1:8000,model=x"]
    assert split_specs(["quick,synthetic:prompt=uniform(16,256),output=fixed(4)"]) == [
        "quick", "synthetic:prompt=uniform(16,256),output=fixed(4)"]


def test_isolated_argv_reproduces_the_options(tmp_path):
    from bench.cli import build_parser

    options = RunOptions(
        device="cuda:1", dtype="bfloat16", seed=7, workload_seed=3, engine_options={"max_batch": 4, "tag": "1"},
        slo=SLO(ttft_ms=200.0, e2e_ms=900.0), timeout_s=2.5, keep_token_ids=False, progress=False,
        warmup_requests=0, roofline=False, sampler_interval_s=0.5,
    )
    argv = run_argv("paged:block_size=16", "llama-1b", {"source": "synthetic"}, tmp_path / "o", options,
                    label="L", manifest_extra={"sweep": {"value": 2}})
    assert argv[:4] == [sys.executable, "-m", "bench", "run"]
    args = build_parser().parse_args(argv[3:])
    assert run_options_from_args(args) == options  # "1" stays a str: JSON, not KEY=VALUE
    assert (args.engine, args.model, args.label, args.workload_json) == ("paged:block_size=16", "llama-1b", "L", {"source": "synthetic"})
    assert args.manifest_extra_json == {"sweep": {"value": 2}}


def test_compare_isolated_runs_in_child_processes(tmp_path):
    result = compare(["mock"], ["quick:num_requests=3,output=fixed(2)"], out_dir=tmp_path / "iso",
                     options=RunOptions(progress=False, roofline=False), isolate=True)
    assert result.exit_code == 0 and len(result.runs) == 1
    run = result.runs[0]
    assert run.manifest["argv"][1:3] == ["run", "--engine"]  # written by `python -m bench run`
    assert run.summary["counts"]["ok"] == 3


def test_plan_interleaves_repeats():
    plan = plan_compare(["mock", "mock:max_batch=2"], ["quick"], repeat=2)
    assert [(p.label, p.dir_name.rsplit("__", 1)[1]) for p in plan] == [
        ("mock", "r1"), ("mock:max_batch=2", "r1"), ("mock", "r2"), ("mock:max_batch=2", "r2")]
    assert plan[0].manifest_extra == {"repeat": {"index": 1, "count": 2}}


def test_a_run_that_cannot_start_still_leaves_a_report_of_the_finished_ones(tmp_path, capsys):
    out = tmp_path / "o"
    code = main(["compare", "--engines", "mock", "mock:colour=blue", "--workloads", SMALL, "--out", str(out), *FAST])
    assert code == 2
    assert "unknown options ['colour']" in capsys.readouterr().err
    assert (out / "report.html").exists()
    assert [p.name for p in out.iterdir() if p.is_dir()] == ["mock__quick_num_requests=6_output=uniform_2_12"]


@pytest.mark.parametrize("isolate", [False, True])
def test_user_given_ceilings_reach_the_roofline(tmp_path, isolate):
    out = tmp_path / "c"
    code = main(["compare", "--engines", "paged", "--workloads", "quick:num_requests=3,output=fixed(2)",
                 "--out", str(out), "--ceilings", "100,2", "--no-progress", "--warmup-requests", "0",
                 *(["--isolate"] if isolate else [])])
    assert code == 0
    roofline = load_run(out / "paged__quick_num_requests=3_output=fixed_2").summary["roofline"]
    assert roofline["ceilings"] == {"bw_bytes_per_s": 100e9, "flops_per_s": 2e12, "source": "user"}
    assert roofline["t_min_s"] == max(roofline["bytes"] / 100e9, roofline["flops"] / 2e12)
