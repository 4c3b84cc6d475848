"""Shared test helpers: random workloads, transformers references, driving an engine."""

from __future__ import annotations

import random
from collections import defaultdict

import torch
from transformers import AutoModelForCausalLM

from engines.model.weights import load_weights
from engines.request import Request


def random_requests(n: int, seed: int, vocab: int, prompt=(4, 100), output=(1, 40), prefix=None) -> list[Request]:
    """Varied prompt and output lengths; with prefix=(share, length), that share of requests
    starts with one common prefix (prefix caching)."""
    rng = random.Random(seed)
    common = [rng.randrange(3, vocab) for _ in range(prefix[1])] if prefix else []
    out = []
    for i in range(n):
        ids = [rng.randrange(3, vocab) for _ in range(rng.randint(*prompt))]
        if prefix and rng.random() < prefix[0]:
            ids = common + ids
        out.append(Request(f"r{i}", tuple(ids), rng.randint(*output)))
    return out


def hf_model(model: str, seed: int = 0, device: str = "cpu"):
    """transformers' own model with the very weights our engines load (random weights are
    drawn on the device: the same preset and seed give other weights on another device)."""
    w = load_weights(model, device=device, dtype="float32", seed=seed)
    hf = AutoModelForCausalLM.from_config(w.config)
    missing, unexpected = hf.load_state_dict(w.state_dict, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}
    return hf.eval()


def hf_generate(hf, requests: list[Request], device: str = "cpu") -> dict[str, list[int]]:
    """Greedy `generate`, one request at a time, end-of-sequence ignored."""
    out = {}
    for r in requests:
        ids = torch.tensor([r.prompt_ids], device=device)
        with torch.no_grad():
            seq = hf.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=r.max_new_tokens,
                min_new_tokens=r.max_new_tokens,
                do_sample=False,
                eos_token_id=None,
                pad_token_id=0,
            )
        out[r.id] = seq[0, ids.shape[1] :].tolist()
    return out


def drive(engine, requests: list[Request], add_every: int = 0, check=True):
    """Run requests to completion. add_every > 0 hands a new request over every that many
    steps (requests arriving while others run). Returns (tokens by id, statuses, stats)."""
    tokens = defaultdict(list, {r.id: [] for r in requests})
    status = {}
    stats = []
    pending = list(requests)
    if not add_every:
        for r in pending:
            engine.add_request(r)
        pending = []
    step = 0
    while pending or engine.has_unfinished():
        if pending and step % add_every == 0:
            engine.add_request(pending.pop(0))
        out = engine.step()
        step += 1
        if check:
            engine.kv.check_invariants()
        if out.stats is not None:
            stats.append(out.stats)
        for ev in out.events:
            tokens[ev.request_id] += ev.token_ids
            if ev.finished:
                assert ev.request_id not in status, f"{ev.request_id} finished twice"
                status[ev.request_id] = ev.status
        assert step < 100_000, "engine does not make progress"
    return tokens, status, stats
