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
def test_rotary_in_place_on_a_strided_view(dtype, tol):
    g = torch.Generator().manual_seed(1)
    T, H, D = 5, 3, 16
    qkv = torch.randn(T, H * D + 32, generator=g).to(DEVICE, dtype)
    x = qkv[:, : H * D].view(T, H, D)  # a view with row stride H*D+32, as in the layer
    pos = torch.tensor([0, 3, 9, 1, 7], device=DEVICE)
    freqs = torch.arange(12.0)[:, None] * (1.0 / 10000 ** (torch.arange(0, D, 2) / D))[None]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos().to(DEVICE, dtype), emb.sin().to(DEVICE, dtype)
    want = TorchOps.rotary(x.clone(), pos, cos, sin)
    tail = qkv[:, H * D :].clone()
    got = FUSED.rotary(x, pos, cos, sin)
    assert rel(got, want) < tol
    assert torch.equal(qkv[:, H * D :], tail), "wrote outside the view"


@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.bfloat16, 1e-2)])
def test_silu_mul(dtype, tol):
    gate_up = torch.randn(6, 2 * 1500, generator=torch.Generator().manual_seed(2)).to(DEVICE, dtype)
    assert rel(FUSED.silu_mul(gate_up), TorchOps.silu_mul(gate_up)) < tol


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_store_equals_rotary_then_cache_write(dtype):
    """q and k rotated in place, k also into its cache slots, v copied: bit for bit what the
    two rotaries and the attention's index copies produce, and no other slot touched."""
    g = torch.Generator().manual_seed(3)
    T, H, HKV, D, PAGE, PAGES = 6, 4, 2, 16, 4, 5
    qkv = torch.randn(T, (H + 2 * HKV) * D, generator=g).to(DEVICE, dtype)
    q, k, v = (t.view(T, -1, D) for t in qkv.split([H * D, HKV * D, HKV * D], dim=-1))
    pos = torch.tensor([0, 3, 9, 1, 7, 2], device=DEVICE)
    slots = torch.tensor([17, 2, 8, 19, 0, 11], device=DEVICE)
    freqs = torch.arange(12.0)[:, None] * (1.0 / 10000 ** (torch.arange(0, D, 2) / D))[None]
    emb = torch.cat((freqs, freqs), -1)
    cos, sin = emb.cos().to(DEVICE, dtype), emb.sin().to(DEVICE, dtype)
    k_cache = torch.randn(PAGES, PAGE, HKV, D, generator=g).to(DEVICE, dtype)
    v_cache = torch.randn(PAGES, PAGE, HKV, D, generator=g).to(DEVICE, dtype)
    want_q = FUSED.rotary(q.clone(), pos, cos, sin)
    want_k_cache, want_v_cache = k_cache.clone(), v_cache.clone()
    want_k = FUSED.rotary(k.clone(), pos, cos, sin)
    want_k_cache.view(-1, HKV, D)[slots] = want_k
    want_v_cache.view(-1, HKV, D)[slots] = v
    FUSED.rotary_store(q, k, v, pos, cos, sin, k_cache, v_cache, slots)
    assert torch.equal(q, want_q)
    assert torch.equal(k, want_k)
    assert torch.equal(k_cache, want_k_cache)
    assert torch.equal(v_cache, want_v_cache)
