"""The CUDA-graph capture helper shared by the decode and mixed-step graph runners, driven on a
CPU through a stand-in for torch.cuda's stream and graph API (the GPU tests capture for real):
two warm-up runs on a side stream, then one run inside the graph, whose output is returned."""

from __future__ import annotations

import contextlib

import torch

from engines.core import cuda_graphs


class _FakeCuda:
    def __init__(self):
        self.events: list[str] = []
        self.current = "main"

    def Stream(self, device):  # noqa: N802 (torch.cuda's name)
        return _FakeStream(self, "side")

    def current_stream(self, device):
        return _FakeStream(self, self.current)

    @contextlib.contextmanager
    def stream(self, s):
        before, self.current = self.current, s.name
        yield
        self.current = before

    def CUDAGraph(self):  # noqa: N802
        return "graph"

    @contextlib.contextmanager
    def graph(self, graph, pool=None):
        self.events.append(f"capture {graph} pool={pool}")
        before, self.current = self.current, "capturing"
        yield
        self.current = before


class _FakeStream:
    def __init__(self, cuda: _FakeCuda, name: str):
        self.cuda, self.name = cuda, name

    def wait_stream(self, other):
        self.cuda.events.append(f"{self.name} waits for {other.name}")


def test_capture_warms_up_twice_on_a_side_stream_then_captures(monkeypatch):
    fake = _FakeCuda()
    monkeypatch.setattr(cuda_graphs.torch, "cuda", fake)
    calls = []

    def run():
        calls.append(fake.current)
        return torch.full((1,), len(calls))

    graph, out = cuda_graphs.capture(run, torch.device("cpu"), pool="p")
    assert calls == ["side", "side", "capturing"]
    assert graph == "graph" and out.item() == 3  # the captured run's output
    assert fake.events == ["side waits for main", "main waits for side", "capture graph pool=p"]
