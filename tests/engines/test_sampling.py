"""Sampling: greedy, temperature / top-k / top-p, reproducible per request seed."""

from __future__ import annotations

import torch

from engines.core.sampling import SamplingBatch, sample, uniform_noise
from engines.registry import create_engine
from engines.request import Request, SamplingParams
from tests.engines.helpers import drive


def _batch(params, steps=None):
    return SamplingBatch.build(params, steps or [0] * len(params), "cpu")


def test_greedy_is_argmax():
    logits = torch.randn(5, 100)
    assert torch.equal(sample(logits, _batch([SamplingParams()] * 5)), logits.argmax(-1))


def test_model_dtype_logits_sample_as_their_float32_widening():
    # The model hands sampling its logits in bf16: greedy takes their argmax as they are, the
    # rest widens them first. Either way, the tokens of the float32 copy (ties included:
    # bf16 rounds many logits to the same value, and the first of them wins).
    logits = (torch.randn(64, 300) * 4).to(torch.bfloat16)
    logits[::3, 7] = logits[::3, 200] = logits[::3].max(dim=-1).values + 1  # exact ties
    greedy = [SamplingParams()] * 64
    mixed = [SamplingParams(temperature=0.8, top_k=50, top_p=0.9, seed=i) if i % 2 else SamplingParams()
             for i in range(64)]
    for params in (greedy, mixed):
        tokens = sample(logits, _batch(params))
        assert torch.equal(tokens, sample(logits.float(), _batch(params)))
    assert (sample(logits, _batch(greedy))[::3] == 7).all()


def test_top_k_one_and_tiny_top_p_are_greedy():
    logits = torch.randn(6, 50)
    params = [SamplingParams(temperature=2.0, top_k=1, seed=i) for i in range(3)]
    params += [SamplingParams(temperature=2.0, top_p=1e-6, seed=i) for i in range(3)]
    assert torch.equal(sample(logits, _batch(params)), logits.argmax(-1))


def test_frequencies_follow_the_softmax():
    # One row of logits, many seeds: sampled frequencies match softmax(logits / T).
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    n = 20000
    params = [SamplingParams(temperature=0.7, seed=s) for s in range(n)]
    tokens = sample(logits.expand(n, -1).clone(), _batch(params))
    freq = torch.bincount(tokens, minlength=5).float() / n
    expected = (logits / 0.7).softmax(-1)
    assert torch.allclose(freq, expected, atol=0.01), (freq, expected)


def test_top_k_and_top_p_cut_the_tail():
    logits = torch.tensor([3.0, 2.9, 2.8, -5.0, -5.0, -5.0])
    n = 3000
    for p in ([SamplingParams(temperature=1.0, top_k=3, seed=s) for s in range(n)],
              [SamplingParams(temperature=1.0, top_p=0.9, seed=s) for s in range(n)]):
        tokens = sample(logits.expand(n, -1).clone(), _batch(p))
        assert set(tokens.tolist()) == {0, 1, 2}


def test_noise_depends_only_on_seed_and_index():
    a = uniform_noise(torch.tensor([7, 8]), torch.tensor([3, 3]), 64)
    b = uniform_noise(torch.tensor([1, 7]), torch.tensor([0, 3]), 64)
    assert torch.equal(a[0], b[1]) and not torch.equal(a[0], a[1])


def test_seeded_request_gives_the_same_tokens_alone_batched_and_preempted():
    sampling = SamplingParams(temperature=1.0, top_k=50, top_p=0.95, seed=1234)
    target = Request("target", tuple(range(10, 60)), 24, sampling=sampling)
    others = [Request(f"o{i}", tuple(range(20 + i, 70 + i)), 30, sampling=SamplingParams(temperature=0.8, seed=i)) for i in range(6)]

    alone = create_engine("continuous", model="tiny", device="cpu")
    tokens_alone = drive(alone, [target])[0]["target"]
    batched = create_engine("paged", model="tiny", device="cpu", max_model_len=128, kv_tokens=144, block_size=8)
    tokens, status, stats = drive(batched, others + [target])
    assert sum(s.preemptions for s in stats) > 0
    assert tokens["target"] == tokens_alone
    other_seed = create_engine("continuous", model="tiny", device="cpu")
    changed = Request("target", target.prompt_ids, 24, sampling=SamplingParams(temperature=1.0, top_k=50, top_p=0.95, seed=99))
    assert drive(other_seed, [changed])[0]["target"] != tokens_alone
