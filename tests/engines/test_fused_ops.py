"""The fused Triton elementwise kernels against the torch reference ops (on a CPU through
Triton's interpreter, set up by tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("triton")

from engines.model.llama import FusedOps, TorchOps  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
FUSED = FusedOps()


def rel(a, b):
    return ((a.float() - b.float()).norm() / b.float().norm()).item()


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
@pytest.mark.parametrize("with_residual", [False, True])
def test_add_rms_norm(dtype, tol, with_residual):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(7, 96, generator=g).to(DEVICE, dtype)
    w = (1 + 0.1 * torch.randn(96, generator=g)).to(DEVICE, dtype)
    res = torch.randn(7, 96, generator=g).to(DEVICE, dtype) if with_residual else None
    want, want_res = TorchOps.add_rms_norm(x, w, 1e-5, res)
    got, got_res = FUSED.add_rms_norm(x, w, 1e-5, res)
    assert rel(got, want) < tol
    if dtype == torch.float32 or DEVICE == "cuda":
        # the residual sum is rounded exactly as torch rounds it (Triton's CPU interpreter
        # truncates to bfloat16 instead of rounding to nearest, so only float32 is exact there)
        assert torch.equal(got_res, want_res)
    else:
        assert rel(got_res, want_res) < tol


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
def test_silu_mul(dtype, tol):
    gate_up = torch.randn(6, 2 * 1500, generator=torch.Generator().manual_seed(2)).to(DEVICE, dtype)
    assert rel(FUSED.silu_mul(gate_up), TorchOps.silu_mul(gate_up)) < tol


def _rotary_case(dtype, seed=3):
    """q, k, v as strided views of one fused qkv row block (as in the layer), positions, cache
    slots, cos/sin tables and K/V caches holding random old entries."""
    g = torch.Generator().manual_seed(seed)
    T, H, HKV, D, PAGE, PAGES = 6, 4, 2, 16, 4, 5
    qkv = torch.randn(T, (H + 2 * HKV) * D + 8, generator=g).to(DEVICE, dtype)  # + a tail no one owns
    q, k, v = (t.view(T, -1, D) for t in qkv[:, : (H + 2 * HKV) * D].split([H * D, HKV * D, HKV * D], dim=-1))
    pos = torch.tensor([0, 3, 9, 1, 7, 2], device=DEVICE)
    slots = torch.tensor([17, 2, 8, 19, 0, 11], device=DEVICE)
    freqs = torch.arange(12.0)[:, None] * (1.0 / 10000 ** (torch.arange(0, D, 2) / D))[None]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos().to(DEVICE, dtype), emb.sin().to(DEVICE, dtype)
    k_cache = torch.randn(PAGES, PAGE, HKV, D, generator=g).to(DEVICE, dtype)
    v_cache = torch.randn(PAGES, PAGE, HKV, D, generator=g).to(DEVICE, dtype)
    return qkv, q, k, v, pos, slots, cos, sin, k_cache, v_cache


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
def test_rotary_store_rotates_like_torch_and_writes_the_cache_slots(dtype, tol):
    """q and k rotated in place as transformers' rotary does (float32 exactly up to rounding
    order); the cache slots get exactly the rotated k and the untouched v; nothing else of the
    caches or of the qkv rows changes."""
    qkv, q, k, v, pos, slots, cos, sin, k_cache, v_cache = _rotary_case(dtype)
    HKV, D = k.shape[1], k.shape[2]
    want_q = TorchOps.rotary(q.clone(), pos, cos, sin)
    want_k = TorchOps.rotary(k.clone(), pos, cos, sin)
    v_before, tail_before = v.clone(), qkv[:, -8:].clone()
    k_old, v_old = k_cache.clone(), v_cache.clone()
    FUSED.rotary_store(q, k, v, pos, cos, sin, k_cache, v_cache, slots)
    assert rel(q, want_q) < tol
    assert rel(k, want_k) < tol
    assert torch.equal(v, v_before)
    assert torch.equal(qkv[:, -8:], tail_before), "wrote outside the views"
    k_flat, v_flat = k_cache.view(-1, HKV, D), v_cache.view(-1, HKV, D)
    assert torch.equal(k_flat[slots], k)  # the cache holds the rotated k, bit for bit
    assert torch.equal(v_flat[slots], v)
    others = torch.ones(k_flat.shape[0], dtype=torch.bool, device=DEVICE)
    others[slots] = False
    assert torch.equal(k_flat[others], k_old.view(-1, HKV, D)[others])
    assert torch.equal(v_flat[others], v_old.view(-1, HKV, D)[others])
