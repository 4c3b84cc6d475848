"""On a CUDA GPU: the Triton attention, the fused kernels and the CUDA-graph decode path keep
every in-repo engine's float32 greedy output equal to transformers' `generate` (float32, with
the same weights, drawn on the GPU; transformers runs on the CPU, its reference path)."""

from __future__ import annotations

import pytest
import torch

from engines.registry import create_engine
from tests.engines.helpers import drive, hf_generate, hf_model, random_requests

pytestmark = pytest.mark.gpu

REQUESTS = random_requests(24, seed=5, vocab=2048, prompt=(2, 200), output=(1, 64), prefix=(0.5, 48))


@pytest.fixture(scope="module", params=["tiny", "tiny-qwen3"])
def reference(request):
    hf = hf_model(request.param, device="cuda")
    return request.param, hf, hf_generate(hf, REQUESTS)


def explain(hf, request, expected, got) -> str:
    """Where the outputs part, and transformers' own top-2 logit gap there: a gap near
    float32 rounding means a tie broken differently, a large one a wrong result."""
    i = next(i for i, (a, b) in enumerate(zip(expected, got)) if a != b) if expected[: len(got)] != got else len(got)
    ids = torch.tensor([list(request.prompt_ids) + expected[:i]])
    with torch.no_grad():
        logits = hf(ids).logits[0, -1].float()
    top = logits.topk(2)
    return (f"{request.id}: first difference at output {i} (expected {expected[i:i + 3]}, got {got[i:i + 3]}); "
            f"generate's top-2 logits there {top.values.tolist()} for tokens {top.indices.tolist()}")


@pytest.mark.parametrize("graphs", [True, False])
@pytest.mark.parametrize(
    "name,options",
    [
        ("naive", dict(max_batch=8)),
        ("static", dict(max_batch=8)),
        ("continuous", dict(max_batch=12, token_budget=64)),
        ("paged", dict(max_batch=24, token_budget=64)),
        ("paged", dict(max_batch=24, token_budget=64, queue_order="lof", admission="reserve", kv_tokens=1024,
                       max_model_len=320)),
        ("paged", dict(max_batch=16, kv_tokens=512, max_model_len=320, token_budget=64, prefix_caching=True)),
        # with graphs, steps mixing prompt chunks with decodes replay graphs too (by default up
        # to 2048 tokens): here they run eagerly, and here only those of 160 tokens or fewer
        ("continuous", dict(max_batch=12, token_budget=64, mixed_graph_tokens=0)),
        ("paged", dict(max_batch=24, token_budget=256, mixed_graph_tokens=160)),
    ],
)
def test_gpu_engines_equal_generate_in_float32(reference, name, options, graphs):
    model, hf, expected = reference
    engine = create_engine(name, model=model, device="cuda", dtype="float32", cuda_graphs=graphs, **options)
    info = engine.describe()["options"]
    assert info["attention"] == "triton" and info["cuda_graphs"] is graphs
    tokens, status, stats = drive(engine, REQUESTS, add_every=2)
    wrong = [explain(hf, r, expected[r.id], tokens[r.id]) for r in REQUESTS if tokens[r.id] != expected[r.id]]
    assert not wrong, f"{len(wrong)} of {len(REQUESTS)} differ:\n" + "\n".join(wrong)
    if info["mixed_graph_tokens"]:
        assert engine.runner.mixed_graphs.replays > 0, "no mixed step was replayed from a graph"
    else:
        assert engine.runner.mixed_graphs is None
    assert engine.kv.is_idle()
    engine.close()


def test_launching_a_step_does_not_wait_for_the_device():
    """With async scheduling a step() launches its forward and waits only for the step before:
    a long kernel queued ahead of the new step must not hold the host. Any hidden host sync
    (a pageable copy to the device, a .item()) would make step() wait for it."""
    import time

    engine = create_engine("paged", model="tiny", device="cuda", dtype="bfloat16", max_batch=8)
    for r in random_requests(8, seed=1, vocab=2048, prompt=(20, 40), output=(60, 60)):
        engine.add_request(r)
    for _ in range(4):  # prefill and the first decode steps: kernels compiled, graphs warm
        engine.step()
    torch.cuda.synchronize()
    torch.cuda._sleep(1_000_000_000)  # about half a second of GPU time, ahead of the next step
    t0 = time.perf_counter()
    engine.step()  # launches behind the sleep, resolves the step before it
    launch_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine.step()  # must wait for the sleep and the step behind it
    wait_s = time.perf_counter() - t0
    assert wait_s > 0.1, f"the sleep kernel took {wait_s:.3f} s: too short to tell"
    assert launch_s < 0.2 * wait_s, f"step() held the host for {launch_s:.3f} s behind a {wait_s:.3f} s kernel"
    engine.close()


def test_step_device_time_is_the_steps_own():
    """StepStats.device_ns times a step's own work on the device (CUDA events): a half-second
    kernel queued ahead of a step is not in its time, though the host waits for it."""
    engine = create_engine("paged", model="tiny", device="cuda", dtype="bfloat16", max_batch=8)
    for r in random_requests(8, seed=1, vocab=2048, prompt=(20, 40), output=(30, 30)):
        engine.add_request(r)
    stats = [engine.step().stats for _ in range(4)]
    torch.cuda.synchronize()
    torch.cuda._sleep(1_000_000_000)  # about half a second of GPU time, ahead of the next step
    behind_sleep = engine.step().stats
    while engine.has_unfinished():
        stats.append(engine.step().stats)
    computed = [s for s in stats + [behind_sleep] if s.prefill_tokens + s.decode_tokens]
    assert all(s.device_ns is not None and 0 < s.device_ns < 100_000_000 for s in computed), \
        [s.device_ns for s in computed]
    assert behind_sleep.device_ns < 50_000_000  # the sleep is not the step's
    engine.close()


def test_batch_invariant_engines_agree_in_bf16():
    """With batch_invariant=True a token's logits do not depend on its batch: the padded
    engine and the paged one, which batch every request differently, give the same bf16
    tokens (without it they part after a few tokens)."""
    outputs = {}
    for name, options in [("naive", dict(max_batch=8)), ("paged", dict(max_batch=24, token_budget=64))]:
        engine = create_engine(name, model="tiny", device="cuda", dtype="bfloat16", batch_invariant=True, **options)
        tokens, status, _ = drive(engine, REQUESTS, add_every=2)
        assert set(status.values()) == {"ok"}
        outputs[name] = tokens
        engine.close()
    differ = [r.id for r in REQUESTS if outputs["naive"][r.id] != outputs["paged"][r.id]]
    assert not differ, f"{len(differ)} of {len(REQUESTS)} requests differ between naive and paged in bf16"
