"""The Triton paged-attention kernel against the reference backend, on random packed batches:
decode rows, prefill chunks over a cached prefix, left pads, sliding windows, pages in
random order. On a CPU it runs in Triton's interpreter, so CI checks the GPU kernel's logic."""

from __future__ import annotations

import random

import pytest
import torch

triton = pytest.importorskip("triton")  # on a CPU, tests/conftest.py set up its interpreter

from engines.attention.metadata import AttentionMetadata  # noqa: E402
from engines.attention.reference import ReferenceAttention  # noqa: E402
from engines.attention.triton_paged import TileConfig, TritonPagedAttention  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def random_batch(rng: random.Random, heads, kv_heads, dim, block, pads: bool, dtype, fresh: float = 0.0):
    """A packed batch of 1-5 sequences with random cached prefixes and new-token counts;
    with probability `fresh` a sequence is a prompt starting in this step (nothing cached)."""
    num_blocks = 5 * -(-100 // block)  # room for 5 sequences of up to 100 cached + new entries
    perm = list(range(num_blocks))
    rng.shuffle(perm)  # pages in random order: the block table must be followed
    qlens, seq_lens, key_start, tables = [], [], [], []
    for _ in range(rng.randint(1, 5)):
        q = rng.choice([1, 1, rng.randint(2, 40)])
        cached = rng.randint(0, 60)
        if rng.random() < fresh:
            q, cached = rng.randint(2, 100), 0
        length = cached + q
        pad = rng.randint(0, min(cached, 10)) if pads else 0
        n_pages = -(-length // block)
        tables.append([perm.pop() for _ in range(n_pages)])
        qlens.append(q)
        seq_lens.append(length)
        key_start.append(pad)
    width = max(len(t) for t in tables)
    bt = torch.zeros(len(tables), width, dtype=torch.int32)
    for i, t in enumerate(tables):
        bt[i, : len(t)] = torch.tensor(t)
    slots = []
    for i, (q, L) in enumerate(zip(qlens, seq_lens)):
        for e in range(L - q, L):
            slots.append(tables[i][e // block] * block + e % block)
    T = sum(qlens)
    qs = torch.zeros(len(qlens) + 1, dtype=torch.int32)
    qs[1:] = torch.cumsum(torch.tensor(qlens), 0)
    meta = AttentionMetadata(
        query_start=qs.to(DEVICE), seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=DEVICE),
        key_start=torch.tensor(key_start, dtype=torch.int32, device=DEVICE), block_tables=bt.to(DEVICE),
        slot_mapping=torch.tensor(slots, dtype=torch.long, device=DEVICE), query_lens=qlens,
        seq_lens_host=seq_lens, key_start_host=key_start, block_size=block,
    )
    g = torch.Generator().manual_seed(rng.randint(0, 1 << 30))
    make = lambda *shape: torch.randn(*shape, generator=g).to(DEVICE, dtype)  # noqa: E731
    cache = make(num_blocks, block, kv_heads, dim)
    return meta, make(T, heads, dim), make(T, kv_heads, dim), make(T, kv_heads, dim), cache, make(num_blocks, block, kv_heads, dim)


@pytest.mark.parametrize(
    "options",
    [
        dict(prefill=TileConfig(128, 32, num_warps=8, num_stages=2), decode=TileConfig(16, 128, num_warps=2, num_stages=4)),
        dict(batch_invariant=True),  # decode tokens in the prefill tile shape
        # 16-key tiles: most key tiles are whole for every query, so the unmasked loop runs
        dict(prefill=TileConfig(16, 16), decode=TileConfig(16, 16)),
    ],
)
def test_other_tile_configurations_equal_reference(options):
    heads, kv_heads, dim, block = 4, 2, 32, 16
    rng = random.Random(11)
    triton_attn = TritonPagedAttention(dim**-0.5, heads, kv_heads, dim, **options)
    ref_attn = ReferenceAttention(dim**-0.5)
    for pads, window in [(True, None), (False, 7), (True, 7)]:
        meta, q, k, v, k_cache, v_cache = random_batch(rng, heads, kv_heads, dim, block, pads, torch.float32)
        want = ref_attn(q, k, v, k_cache.clone(), v_cache.clone(), meta, ref_attn.prepare(meta), window)
        got = triton_attn(q, k, v, k_cache, v_cache, meta, triton_attn.prepare(meta), window)
        err = (got - want).norm() / want.norm()
        assert err < 1e-5, f"{options}, pads={pads}, window={window}: relative error {err:.2e}"


@pytest.mark.parametrize("heads,kv_heads,dim,block", [(4, 2, 32, 16), (8, 1, 16, 4), (4, 4, 64, 8)])
@pytest.mark.parametrize("pads", [False, True])
@pytest.mark.parametrize("window", [None, 7])
def test_triton_equals_reference(heads, kv_heads, dim, block, pads, window):
    rng = random.Random(repr((heads, kv_heads, dim, block, pads, window)))  # the same draws every run
    scale = dim**-0.5
    triton_attn = TritonPagedAttention(scale, heads, kv_heads, dim)
    ref_attn = ReferenceAttention(scale)
    for _ in range(3):
        meta, q, k, v, k_cache, v_cache = random_batch(rng, heads, kv_heads, dim, block, pads, torch.float32)
        kc2, vc2 = k_cache.clone(), v_cache.clone()
        want = ref_attn(q, k, v, k_cache, v_cache, meta, ref_attn.prepare(meta), window)
        got = triton_attn(q, k, v, kc2, vc2, meta, triton_attn.prepare(meta), window)
        assert torch.equal(k_cache, kc2) and torch.equal(v_cache, vc2), "K/V written differently"
        err = (got - want).norm() / want.norm()
        assert err < 1e-5, f"relative error {err:.2e}"


def test_engines_with_triton_attention_and_graph_buffers_equal_generate():
    """The whole engine on the Triton kernel, decode steps through the CUDA-graph runner's
    static buffers and steps that mix prompt chunks with decodes through the mixed-step
    runner's (both run eagerly here: no GPU), against transformers: padded token buckets,
    empty sequence rows and -1 tiles change no real token."""
    from engines.core.cuda_graphs import DecodeGraphs
    from engines.core.mixed_graphs import MixedGraphs
    from engines.registry import create_engine
    from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

    requests = random_requests(5, seed=2, vocab=2048, prompt=(2, 40), output=(1, 12), prefix=(0.5, 20))
    expected = hf_generate(hf_model("tiny"), requests)
    configs = [("naive", dict(max_batch=3)), ("static", dict(max_batch=3)),
               ("continuous", dict(token_budget=16, max_batch=4)),
               ("paged", dict(block_size=4, prefix_caching=True, max_batch=3))]
    for name, options in configs:
        engine = create_engine(name, model="tiny", device=DEVICE, attention="triton", **options)
        runner, opts = engine.runner, engine.policy.options
        max_blocks = 2 * opts.max_model_len // opts.block_size
        if runner.graphs is None:  # on a CPU: the graph runners' buffers, without capture
            runner.graphs = DecodeGraphs(runner.model, runner.storage, opts.max_batch, max_blocks, runner.device, capture=False)
            runner.mixed_graphs = MixedGraphs(runner.model, runner.storage, opts.max_batch, max_blocks, 48, runner.device, capture=False)
        tokens, status, _ = drive(engine, requests, add_every=1)
        assert {r.id: tokens[r.id] for r in requests} == expected, name
        if runner.mixed_graphs is not None:
            assert runner.mixed_graphs.replays > 0, f"{name}: no step went through the mixed-step buffers"


def test_steps_the_mixed_graphs_cannot_take_run_eagerly_from_the_same_host_batch():
    """Mixed-step buffers of 4 blocks per sequence: steps of longer sequences do not fit and
    run eagerly, reusing the host batch already made for the graphs; tokens stay generate's."""
    from engines.core.mixed_graphs import MixedGraphs
    from engines.registry import create_engine
    from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

    requests = random_requests(5, seed=2, vocab=2048, prompt=(2, 40), output=(1, 12), prefix=(0.5, 20))
    expected = hf_generate(hf_model("tiny"), requests)
    engine = create_engine("paged", model="tiny", device=DEVICE, attention="triton", block_size=4, max_batch=3,
                           token_budget=16)
    runner = engine.runner
    # the mixed-step runner's buffers, run without capture (on a GPU too: small on purpose)
    runner.mixed_graphs = MixedGraphs(runner.model, runner.storage, 3, 4, 16, runner.device, capture=False)
    reused = []
    build = runner.build
    runner.build = lambda plan, prev=None, host=None: reused.append(host is not None) or build(plan, prev, host)
    tokens, _, _ = drive(engine, requests, add_every=1)
    assert {r.id: tokens[r.id] for r in requests} == expected
    assert runner.mixed_graphs.replays > 0 and any(reused), "both paths should have run"


def test_decode_tiles_launch_longest_context_first():
    """The GPU starts the long decode programs first (no SM left alone with one at the end)."""
    attention = TritonPagedAttention(32**-0.5, 4, 2, 32)
    rng = random.Random(3)
    checked = 0
    for _ in range(8):
        meta, *_ = random_batch(rng, 4, 2, 32, 16, False, torch.float32)
        plan = attention.prepare(meta)
        decode = [i for i, q in enumerate(meta.query_lens) if q == 1]
        if len(decode) < 2:
            continue  # nothing to order
        checked += 1
        launched = plan.decode.seq.tolist()
        assert sorted(launched) == decode
        assert [meta.seq_lens_host[i] for i in launched] == sorted((meta.seq_lens_host[i] for i in decode), reverse=True)
    assert checked >= 2, "too few batches with several decode rows to test the order"


def test_head_major_pages_read_through_strides_give_the_same_output():
    """The kernel addresses the cache through its strides only: head-major pages ([blocks,
    kv_heads, page, dim] in memory, seen as [blocks, page, kv_heads, dim]; what
    benchmarks/kv_layout.py times) give bitwise the same output as token-major ones."""
    from benchmarks.kv_layout import head_major

    heads, kv_heads, dim, block = 4, 2, 32, 16
    rng = random.Random(5)
    attention = TritonPagedAttention(dim**-0.5, heads, kv_heads, dim)
    for _ in range(3):
        meta, q, k, v, k_cache, v_cache = random_batch(rng, heads, kv_heads, dim, block, False, torch.float32)
        # the step's own keys are read from the cache too: write them first, in both layouts
        k_cache.view(-1, kv_heads, dim)[meta.slot_mapping] = k
        v_cache.view(-1, kv_heads, dim)[meta.slot_mapping] = v
        kc, vc = head_major(k_cache), head_major(v_cache)
        assert kc.stride(2) == block * dim and torch.equal(kc, k_cache)  # other memory, same values
        plan = attention.prepare(meta)
        want = attention(q, k, v, k_cache, v_cache, meta, plan, kv_written=True)
        got = attention(q, k, v, kc, vc, meta, plan, kv_written=True)
        assert torch.equal(got, want)
