"""Each step says whether its forward replayed a CUDA graph (StepStats.cuda_graph), so a run
can show the steps the graphs did not cover. On a CPU there are no graphs: a stand-in that
takes decode-only steps, as engines.core.cuda_graphs.DecodeGraphs does, plays their part."""

from __future__ import annotations

import torch

from engines.core.build import build_engine
from tests.engines.helpers import drive, random_requests


class DecodeOnlyGraphs:
    """Takes the steps DecodeGraphs would (one new token per sequence) and returns logits
    that sample token 0: what matters here is which steps it took."""

    def __init__(self, vocab: int):
        self.vocab = vocab
        self.replays = 0

    def fits(self, chunks) -> bool:
        return all(c.wasted or (c.num_tokens == 1 and not c.num_pad) for c in chunks)

    def run(self, chunks, previous=None) -> torch.Tensor:
        self.replays += 1
        return torch.zeros(len(chunks), self.vocab)


def test_steps_say_whether_a_graph_was_replayed():
    engine = build_engine("continuous", "tiny", device="cpu", dtype="float32", max_batch=4, token_budget=64)
    graphs = DecodeOnlyGraphs(engine.vocab_size)
    engine.runner.graphs = graphs
    requests = random_requests(6, seed=3, vocab=2048, prompt=(5, 40), output=(3, 9))
    _, status, stats = drive(engine, requests, add_every=2)
    assert set(status.values()) == {"ok"}
    computed = [s for s in stats if s.prefill_tokens + s.decode_tokens > 0]
    replayed = [s for s in computed if s.cuda_graph]
    eager = [s for s in computed if s.cuda_graph is False]
    assert len(replayed) == graphs.replays > 0
    assert all(s.prefill_tokens == 0 for s in replayed)  # decode-only steps, as the stand-in takes
    assert eager and all(s.prefill_tokens > 0 for s in eager)  # steps with prompt work ran eagerly
    assert len(replayed) + len(eager) == len(computed)
    assert all(s.cuda_graph is None for s in stats if s.prefill_tokens + s.decode_tokens == 0)
