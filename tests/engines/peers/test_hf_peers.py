"""What both transformers peers (hf-generate, hf-cb) must do inside the harness: the same greedy
tokens as transformers' generate and the in-repo paged engine, streamed as produced, each
request to its own length or stop id, abort, refusal of bad requests, and a clean close."""

from __future__ import annotations

import gc
import json
import threading
import weakref

import pytest

from engines.api import model_limits
from engines.registry import create_engine
from engines.request import Request, RequestError
from tests.engines.helpers import drive
from tests.engines.peers.conftest import CPU, EOS_ID, PEERS, collect


def test_greedy_tokens_equal_generate_and_paged(peer, reference):
    requests, expected, paged = reference
    assert EOS_ID in expected["eos"][:-1], "the EOS request no longer meets end-of-sequence: pick another prompt"
    assert expected == paged, "the in-repo paged engine disagrees with generate: see tests/engines/test_equality.py"
    tokens, status, errors, _ = collect(peer, requests)
    assert status == {r.id: "ok" for r in requests}, errors
    for r in requests:
        assert len(tokens[r.id]) == r.max_new_tokens, f"{r.id}: {len(tokens[r.id])} of {r.max_new_tokens} tokens"
    mismatched = [r.id for r in requests if tokens[r.id] != expected[r.id]]
    assert not mismatched, f"{peer.name}: outputs differ from generate for {mismatched}"


def test_requests_arriving_while_others_run(peer, reference):
    requests, expected, _ = reference
    tokens, status, _ = drive(peer, requests, add_every=2, check=False)
    assert set(status.values()) == {"ok"} and len(status) == len(requests)
    assert tokens == expected


def test_tokens_arrive_as_they_are_produced(peer, reference):
    requests, expected, _ = reference
    longest = max(requests, key=lambda r: r.max_new_tokens)
    assert longest.max_new_tokens >= 12
    tokens, status, _, carried = collect(peer, [longest])
    assert tokens[longest.id] == expected[longest.id] and status[longest.id] == "ok"
    assert len(carried[longest.id]) >= 3, (
        f"{peer.name}: {longest.max_new_tokens} tokens came in {len(carried[longest.id])} step() calls: "
        "handed over at the end of the batch, not streamed"
    )


def test_stop_ids_end_a_request_early(peer, reference):
    requests, expected, _ = reference
    base = max(requests, key=lambda r: r.max_new_tokens)
    stop = expected[base.id][6]
    cut = expected[base.id].index(stop) + 1  # the first time the stop id comes
    stopping = Request("stops", base.prompt_ids, base.max_new_tokens, stop_token_ids=(stop, 0))
    plain = Request("plain", base.prompt_ids, base.max_new_tokens)
    tokens, status, _, _ = collect(peer, [stopping, plain])
    assert tokens["stops"] == expected[base.id][:cut] and status["stops"] == "ok"
    assert tokens["plain"] == expected[base.id], "one request's stop ids must not stop another"


def test_abort_running_and_waiting_requests(peer, reference):
    requests, expected, _ = reference
    long = Request("long", requests[0].prompt_ids, 200)  # long enough to be caught mid-way
    queued = Request("queued", requests[1].prompt_ids, 24)
    others = [r for r in requests[2:6]]
    aborted_at = {}

    def abort_long_once_it_streams(step, out):
        if not aborted_at and any(ev.request_id == "long" and ev.token_ids for ev in out.events):
            peer.abort("long")
            aborted_at["step"] = step

    peer.add_request(long)
    peer.add_request(queued)
    peer.abort("queued")  # right after it was added: waiting or barely started
    tokens, status, _, carried = collect(peer, others, on_step=abort_long_once_it_streams)
    assert status["long"] == status["queued"] == "cancelled"
    assert all(step <= aborted_at["step"] for step in carried.get("long", [])), "tokens after the abort"
    assert len(tokens.get("long", [])) < 200
    assert {r.id: tokens[r.id] for r in others} == {r.id: expected[r.id] for r in others}
    assert all(status[r.id] == "ok" for r in others)
    assert not peer.has_unfinished()


def test_bad_requests_are_refused_and_the_rest_complete(peer, reference):
    requests, expected, _ = reference
    good = requests[:3]
    for r in good:
        peer.add_request(r)
    vocab, max_len = model_limits(peer.describe())
    bad = [
        (Request("vocab", (5, vocab), 4), "outside the vocabulary"),
        (Request("empty", (), 4), "empty prompt"),
        (Request("long", (5,) * 10, max_len), "exceeds the context length"),
        (Request("zero", (5, 6), 0), "max_new_tokens must be >= 1"),
    ]
    for r, message in bad:
        with pytest.raises(RequestError, match=message):
            peer.add_request(r)
    tokens, status, _, _ = collect(peer)
    assert status == {r.id: "ok" for r in good}
    assert {r.id: tokens[r.id] for r in good} == {r.id: expected[r.id] for r in good}


@pytest.mark.parametrize("name", list(PEERS))
def test_close_ends_every_thread_it_started(name, reference):
    requests, _, _ = reference
    before = set(threading.enumerate())
    engine = create_engine(name, **CPU, **PEERS[name])
    model = weakref.ref(engine.model)
    engine.add_request(Request("busy", requests[0].prompt_ids, 24))
    engine.step()
    engine.close()
    left = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not left, f"{name} left threads running after close(): {left}"
    gc.collect()
    assert model() is None, f"{name} still holds the model after close(): its memory is not freed"


def test_describe_is_a_json_manifest_entry(peer):
    info = peer.describe()
    json.dumps(info)
    assert info["name"] == peer.name and info["kind"] == "peer"
    assert info["model"]["name"] == "tiny" and info["model"]["device"] == "cpu"
    assert info["model"]["parameters"] > 0
    assert model_limits(info) == (2048, info["options"]["max_model_len"])
    assert info["options"]["attn_implementation"]
