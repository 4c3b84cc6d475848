"""Shared fixtures of the transformers peer tests: one small workload, its greedy outputs from
transformers' generate (one request at a time) and from the in-repo paged engine, and a
step loop that records when tokens arrived."""

from __future__ import annotations

import time

import pytest

from engines.registry import create_engine
from engines.request import Request
from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

# A prompt whose greedy continuation on "tiny" (seed 0) holds the model's end-of-sequence id
# (2) at position 13: an engine that honoured end-of-sequence would stop or pad there.
EOS_PROMPT = (866, 120, 1386, 1725, 609, 1233)
EOS_ID = 2

# Small outputs on purpose: several tests share 2 busy CPU cores.
CPU = dict(model="tiny", device="cpu", dtype="float32")
PEERS = {
    "hf-generate": dict(max_batch=3),  # 8 requests: three batches
    "hf-cb": dict(block_size=16, num_blocks=64),
}


@pytest.fixture(scope="session")
def reference():
    """(requests, generate's tokens, paged's tokens) for 8 requests plus the EOS request."""
    requests = random_requests(8, seed=3, vocab=2048, prompt=(4, 60), output=(1, 24))
    requests.append(Request("eos", EOS_PROMPT, 20))
    expected = hf_generate(hf_model("tiny"), requests)
    paged = create_engine("paged", max_batch=8, **CPU)
    paged_tokens, _, _ = drive(paged, requests)
    paged.close()
    return requests, expected, paged_tokens


@pytest.fixture(params=list(PEERS))
def peer(request):
    """A fresh peer engine on the CPU, closed after the test."""
    engine = create_engine(request.param, **CPU, **PEERS[request.param])
    yield engine
    engine.close()


def collect(engine, requests=(), limit_s=60.0, on_step=None):
    """Add `requests`, step until nothing is unfinished. Returns (tokens, statuses, errors,
    steps that carried tokens, per request). on_step(step_index, step_output) may act or
    check mid-run."""
    for r in requests:
        engine.add_request(r)
    tokens, status, errors, carried = {}, {}, {}, {}
    deadline = time.monotonic() + limit_s
    step = 0
    while engine.has_unfinished():
        assert time.monotonic() < deadline, f"{engine.name} did not finish within {limit_s} s"
        out = engine.step()
        for ev in out.events:
            assert ev.request_id not in status, f"{ev.request_id}: an event after its end"
            tokens.setdefault(ev.request_id, []).extend(ev.token_ids)
            if ev.token_ids:
                carried.setdefault(ev.request_id, []).append(step)
            if ev.finished:
                status[ev.request_id] = ev.status
                errors[ev.request_id] = ev.error
        if on_step is not None:
            on_step(step, out)
        step += 1
    return tokens, status, errors, carried
