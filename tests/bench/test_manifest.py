"""Run provenance: git state, machine facts and the manifest's keys."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from bench.manifest import PROJECT_DIR, build_manifest, harness_info, harness_version, machine_info
from engines.mock import MockEngine
from engines.request import Request, SamplingParams
from workloads.workload import Workload


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    git(path, "config", "user.email", "t@example.com")
    git(path, "config", "user.name", "t")
    (path / "a.py").write_text("x = 1\n")
    git(path, "add", "a.py")
    git(path, "commit", "-q", "-m", "one")
    return path


def test_git_commit_and_dirty_flag(repo):
    info = harness_info(repo)
    assert info["git_commit"] == git(repo, "rev-parse", "HEAD") and len(info["git_commit"]) == 40
    assert info["git_dirty"] is False
    (repo / "notes.txt").write_text("untracked files do not change the code that ran\n")
    assert harness_info(repo)["git_dirty"] is False
    (repo / "a.py").write_text("x = 2\n")
    assert harness_info(repo)["git_dirty"] is True


def test_not_a_checkout_gives_none(tmp_path, repo):
    plain = tmp_path / "plain"
    plain.mkdir()
    assert harness_info(plain) == {"version": harness_version(), "git_commit": None, "git_dirty": None}
    # installed inside someone else's repository: that repository's commit is not ours
    inner = repo / "site-packages"
    inner.mkdir()
    assert harness_info(inner)["git_commit"] is None


def test_this_checkout():
    info = harness_info()
    assert info["version"] == harness_version() == "0.1.0"
    if (PROJECT_DIR / ".git").exists():
        assert info["git_commit"] == git(PROJECT_DIR, "rev-parse", "HEAD")
        assert isinstance(info["git_dirty"], bool)


def test_machine_info_fields():
    m = machine_info()
    assert m["cpu_count"] >= 1 and m["memory_bytes"] > 2**20
    assert m["python"] == ".".join(map(str, sys.version_info[:3]))
    assert m["hostname"] and m["platform"]
    assert m["torch"] is not None and m["transformers"] is not None
    assert set(m) == {"hostname", "platform", "python", "cpu", "cpu_count", "memory_bytes", "gpu",
                      "gpu_count", "driver", "cuda", "torch", "transformers"}


def test_gpu_facts_from_nvml(monkeypatch):
    nv = types.ModuleType("pynvml")
    nv.nvmlInit = lambda: None
    nv.nvmlShutdown = lambda: None
    nv.nvmlSystemGetDriverVersion = lambda: "580.65.06"
    nv.nvmlDeviceGetCount = lambda: 2
    nv.nvmlDeviceGetHandleByIndex = lambda i: i
    nv.nvmlDeviceGetName = lambda h: b"NVIDIA H200"
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    if "torch" in sys.modules:  # a CPU torch says no GPU; NVML fills in what it knows
        monkeypatch.setattr(sys.modules["torch"].cuda, "is_available", lambda: False)
    m = machine_info("cuda:0")
    assert (m["driver"], m["gpu"], m["gpu_count"]) == ("580.65.06", "NVIDIA H200", 2)


def test_gpu_facts_without_nvml(monkeypatch):
    monkeypatch.setitem(sys.modules, "pynvml", None)
    m = machine_info()
    assert m["driver"] is None


def workload(sampling=SamplingParams()):
    reqs = [Request(f"r{i}", (5, 6, 7), 3, sampling=sampling) for i in range(2)]
    return Workload("w", reqs, spec={"source": "synthetic"}, notes=["clipped 0"])


def test_manifest_keys_and_content():
    engine = MockEngine(max_batch=7)
    run = {"mode": "offline", "seed": 0, "started_at": "2026-01-01T00:00:00.000+00:00",
           "status": "complete", "warmup_s": 0.1, "error": None}
    m = build_manifest(engine_info=engine.describe(), workload=workload(), run=run,
                       device_sampler={"source": "cpu", "interval_s": 0.2})
    # docs/RESULTS.md's keys, and the command line that made the run
    assert set(m) == {"label", "harness", "engine", "model", "workload", "run", "machine", "device_sampler", "argv"}
    assert m["label"] == "mock"
    assert m["engine"] == {"name": "mock", "kind": "test", "options": engine.describe()["options"]}
    assert m["engine"]["options"]["max_batch"] == 7
    assert m["model"] is None
    assert m["workload"]["content_hash"] == workload().content_hash
    assert m["workload"]["greedy"] is True and m["workload"]["notes"] == ["clipped 0"]
    assert m["run"] is run


def test_manifest_extra_and_sampled_workloads():
    info = MockEngine().describe()
    m = build_manifest(engine_info=info, workload=workload(SamplingParams(temperature=0.8)), run={},
                       device_sampler={}, label="mine", extra={"sweep": {"name": "s", "variable": "rate", "value": 2}})
    assert m["label"] == "mine" and m["sweep"]["value"] == 2
    assert m["workload"]["greedy"] is False  # no consistency check for sampled outputs
    with pytest.raises(ValueError, match="'engine' would overwrite"):
        build_manifest(engine_info=info, workload=workload(), run={}, device_sampler={}, extra={"engine": {}})
