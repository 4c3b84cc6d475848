"""`bench table`: the shared in-repo options reach the in-repo engines only, every model gets
its runs, one table and one report cover them all."""

from __future__ import annotations

import io
import json

from rich.console import Console

from bench.cli import main
from bench.gpu_table import in_repo_spec, run_table
from bench.session import RunOptions


def test_in_repo_spec_adds_shared_options_and_keeps_the_engines_own():
    assert in_repo_spec("paged", {"kv_tokens": 64}) == "paged:kv_tokens=64"
    assert in_repo_spec("paged:kv_tokens=8", {"kv_tokens": 64, "max_model_len": 32}) == "paged:kv_tokens=8,max_model_len=32"
    assert in_repo_spec("hf-cb:use_cuda_graph=true", {"kv_tokens": 64}) == "hf-cb:use_cuda_graph=true"
    assert in_repo_spec("mock", {"kv_tokens": 64}) == "mock"


def test_table_over_two_models(tmp_path):
    out = io.StringIO()
    console = Console(file=out, width=200)
    runs, interrupted = run_table(
        ["tiny", "tiny-qwen3"], ["paged", "mock"], "quick:num_requests=4,output=fixed(3)", tmp_path,
        RunOptions(progress=False, roofline=False, warmup_requests=0),
        in_repo_options={"max_model_len": 256, "kv_tokens": 2048}, isolate=False, console=console,
    )
    assert not interrupted and len(runs) == 4
    by = {(r.manifest["table_model"], r.manifest["table_engine"]): r for r in runs}
    assert set(by) == {(m, e) for m in ("tiny", "tiny-qwen3") for e in ("paged", "mock")}
    paged = by[("tiny-qwen3", "paged")].manifest["engine"]["options"]
    assert paged["kv_tokens"] == 2048 and paged["max_model_len"] == 256
    assert "kv_tokens" not in by[("tiny", "mock")].manifest["engine"]["options"]
    assert by[("tiny", "paged")].label == "tiny paged"  # one report tells the shapes apart
    assert (tmp_path / "report.html").stat().st_size > 0
    text = out.getvalue()
    assert "tiny-qwen3" in text and "out tok/s" in text


def test_cli_table_writes_the_report(tmp_path, capsys):
    code = main(["table", "--models", "tiny", "--engines", "naive", "--workload", "quick:num_requests=2,output=fixed(2)",
                 "--kv-tokens", "1024", "--max-model-len", "128", "--out", str(tmp_path / "t"), "--no-isolate",
                 "--no-progress", "--no-roofline", "--warmup-requests", "0"])
    assert code == 0
    assert (tmp_path / "t" / "report.html").exists()


def test_resume_keeps_complete_runs_and_reruns_the_rest(tmp_path):
    """A table cut short (here: only naive ran) is finished by a second command with
    --resume: naive is not run again, its numbers stay, static runs, one table covers both;
    an incomplete run directory is set aside, not deleted."""
    common = ["--models", "tiny", "--workload", "quick:num_requests=2,output=fixed(2)", "--kv-tokens", "1024",
              "--max-model-len", "128", "--out", str(tmp_path / "t"), "--no-isolate", "--no-progress",
              "--no-roofline", "--warmup-requests", "0"]
    assert main(["table", "--engines", "naive", *common]) == 0
    naive_dir = next((tmp_path / "t").glob("tiny_naive*"))
    measured = lambda: {k: v for k, v in json.loads((naive_dir / "summary.json").read_text()).items() if k != "consistency"}  # noqa: E731
    first_summary = measured()
    broken = tmp_path / "t" / naive_dir.name.replace("naive", "static")
    broken.mkdir()  # what a run killed before writing anything leaves: no readable result
    assert main(["table", "--engines", "naive,static", "--resume", *common]) == 0
    assert measured() == first_summary  # kept, not re-run (only the agreement block is filled in)
    assert (broken / "summary.json").exists()
    assert broken.with_name(broken.name + ".incomplete-1").is_dir()
    report = (tmp_path / "t" / "report.html").read_text()
    assert "tiny naive" in report and "tiny static" in report


def test_table_prints_the_power_capped_share():
    from types import SimpleNamespace

    from bench.gpu_table import print_table

    def run(engine, capped):
        summary = {"counts": {"ok": 256}, "output_tok_per_s": 8000.0,
                   "device": {"utilization_pct_mean": 98.0, "power_capped_pct": capped}}
        return SimpleNamespace(manifest={"table_model": "llama-8b", "table_engine": engine}, summary=summary,
                               label=engine)

    out = io.StringIO()
    print_table([run("paged", 89.4), run("static", None)], Console(file=out, width=250))
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if "power cap %" in line)
    paged = next(line for line in lines if " paged " in line)
    column = header.index("power cap %")
    assert paged[column:column + len("power cap %")].strip() == "89"


def test_table_splits_the_roofline_into_schedule_and_steps():
    from types import SimpleNamespace

    from bench.gpu_table import print_table

    roofline = {"efficiency": 0.5, "steps_bound": {"efficiency": 0.8, "schedule_efficiency": 0.625}}
    summary = {"counts": {"ok": 256}, "output_tok_per_s": 8000.0, "roofline": roofline}
    runs = [SimpleNamespace(manifest={"table_model": "llama-8b", "table_engine": "paged"}, summary=summary,
                            label="paged"),
            SimpleNamespace(manifest={"table_model": "llama-8b", "table_engine": "hf-cb"},
                            summary={"counts": {"ok": 256}, "output_tok_per_s": 500.0,
                                     "roofline": {"efficiency": 0.03, "steps_bound": None}}, label="hf-cb")]
    out = io.StringIO()
    print_table(runs, Console(file=out, width=250))
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if "schedule %" in line)

    def cell(row: str, name: str) -> str:
        start = header.index(name)
        return row[start:start + len(name)].strip()

    paged = next(line for line in lines if " paged " in line)
    peer = next(line for line in lines if " hf-cb " in line and "500" in line)
    assert [cell(paged, c) for c in ("roofline %", "schedule %", "in-step %")] == ["50.0", "62.5", "80.0"]
    assert [cell(peer, c) for c in ("schedule %", "in-step %")] == ["–", "–"]  # a peer's steps are unseen
