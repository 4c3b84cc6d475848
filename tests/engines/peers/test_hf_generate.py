"""hf-generate specifics: batches share one sampling setting, per-row streaming and stopping
inside a padded generate() batch, a failed batch ends only its own requests, and options."""

from __future__ import annotations

import threading

import pytest
import torch

from engines.peers.generate_stream import BatchStream, RowsDone
from engines.peers.hf_generate import left_pad
from engines.registry import create_engine
from engines.request import ConfigError, Request, SamplingParams
from tests.engines.peers.conftest import CPU, collect


def record_batches(engine) -> list[list[str]]:
    """Wrap the worker's batch runner so the test sees every batch it forms."""
    batches = []
    run = engine._run_batch

    def recording(batch):
        batches.append([r.id for r in batch])
        run(batch)

    engine._run_batch = recording
    return batches


def test_batches_hold_one_sampling_setting_in_arrival_order(reference):
    requests, expected, _ = reference
    hot = SamplingParams(temperature=1.0, seed=1)
    cold = SamplingParams(temperature=0.5, top_k=20, seed=2)
    engine = create_engine("hf-generate", max_batch=3, **CPU)
    batches = record_batches(engine)
    mixed = []
    for i, r in enumerate(requests[:6]):
        mixed.append(r)
        mixed.append(Request(f"s{i}", r.prompt_ids, 8, sampling=hot if i % 2 else cold))
    tokens, status, _, _ = collect(engine, mixed)
    engine.close()

    assert set(status.values()) == {"ok"} and len(status) == len(mixed)
    kind = {r.id: (r.sampling.temperature, r.sampling.top_k) for r in mixed}
    assert all(len({kind[rid] for rid in b}) == 1 for b in batches), f"a batch mixed sampling settings: {batches}"
    assert all(len(b) <= 3 for b in batches)
    order = [r.id for r in mixed]
    assert all(order.index(a) < order.index(b) for batch in batches for a, b in zip(batch, batch[1:]))
    for r in requests[:6]:
        assert tokens[r.id] == expected[r.id], f"greedy {r.id} was not run greedily"
    assert all(len(tokens[f"s{i}"]) == 8 for i in range(6))
    assert all(0 <= t < 2048 for i in range(6) for t in tokens[f"s{i}"])


def test_a_failed_batch_ends_its_own_requests_only(reference):
    requests, expected, _ = reference
    engine = create_engine("hf-generate", max_batch=2, **CPU)
    forward = engine.model.forward
    calls = {"n": 0}

    def fail_once(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("injected device failure")
        return forward(*args, **kwargs)

    engine.model.forward = fail_once
    batches = record_batches(engine)
    tokens, status, errors, _ = collect(engine, requests[:4])
    engine.close()
    failed = batches[0]  # the worker may start before all four are added: its first batch fails
    assert {rid for rid, s in status.items() if s == "error"} == set(failed)
    assert all("generate failed: RuntimeError: injected device failure" in errors[rid] for rid in failed)
    rest = [r.id for r in requests[:4] if r.id not in failed]
    assert rest and all(status[rid] == "ok" and tokens[rid] == expected[rid] for rid in rest)


def test_batch_stream_reports_each_row_to_its_own_end():
    requests = [Request("a", (1,), 2), Request("b", (1,), 4, stop_token_ids=(7,)), Request("c", (1,), 4)]
    events = []
    aborted = set()
    def emit(rid, tokens, finished=False, **status):
        events.append((rid, tokens, finished))

    stream = BatchStream(requests, emit, aborted.__contains__)
    stream.put(torch.tensor([[1, 1, 1], [1, 1, 1]]).T)  # the prompt: skipped
    assert events == []
    stream.put(torch.tensor([5, 6, 9]))
    stream.put(torch.tensor([5, 7, 9]))
    aborted.add("c")
    stream.put(torch.tensor([5, 8, 9]))
    assert events == [
        ("a", [5], False), ("b", [6], False), ("c", [9], False),
        ("a", [5], True), ("b", [7], True), ("c", [9], False),
    ]  # fmt: skip
    stream.close_unfinished()
    assert events[-1:] == [("c", [9], False)], "an aborted row is not an error"


def test_rows_done_marks_rows_by_length_stop_id_abort_and_close():
    requests = [Request("a", (1,), 1), Request("b", (1,), 3, stop_token_ids=(7,)), Request("c", (1,), 3)]
    aborted, stopping = set(), threading.Event()
    done = RowsDone(requests, 2, torch.device("cpu"), is_aborted=aborted.__contains__, stopping=stopping)
    ids = torch.tensor([[0, 1, 5], [0, 1, 7], [0, 1, 5]])  # one generated token each
    assert done(ids, None).tolist() == [True, True, False]
    aborted.add("c")
    assert done(ids, None).tolist() == [True, True, True]
    aborted.clear()
    stopping.set()
    assert done(ids, None).tolist() == [True, True, True]


def test_left_pad_aligns_prompts_right():
    ids, mask = left_pad([Request("a", (4, 5, 6), 1), Request("b", (9,), 1)], torch.device("cpu"))
    assert ids.tolist() == [[4, 5, 6], [0, 0, 9]]
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_options_are_checked_and_resolved():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['max_batch_size'\].*max_batch \(int\)"):
        create_engine("hf-generate", max_batch_size=4, **CPU)
    with pytest.raises(ConfigError, match="max_batch=0: must be >= 1"):
        create_engine("hf-generate", max_batch=0, **CPU)
    with pytest.raises(ConfigError, match="max_batch='4': expected a whole number"):
        create_engine("hf-generate", max_batch="4", **CPU)
    with pytest.raises(ConfigError, match="exceeds the model's max_position_embeddings=2048"):
        create_engine("hf-generate", max_model_len=4096, **CPU)
    engine = create_engine("hf-generate", max_model_len=256, attn_implementation="eager", **CPU)
    options = engine.describe()["options"]
    engine.close()
    assert options["max_batch"] == 32, "CPU default"
    assert options["max_model_len"] == 256 and options["attn_implementation"] == "eager"
