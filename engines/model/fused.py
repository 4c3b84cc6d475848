"""Fused elementwise kernels for the GPU forward (Triton): one launch where torch needs several.

At decode batch sizes a layer's norms, rotary embedding and SwiGLU are a few dozen kernels
over a megabyte each: launch- and latency-bound, about as long as the layer's matrix
products on a small model. Each kernel here reads its inputs once and writes once, computes
in float32 and rounds once. The torch versions in engines.model.llama stay the reference
(CPU, and the tests compare the two).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl


@triton.jit
def _add_rms_norm_kernel(x_ptr, res_ptr, w_ptr, out_ptr, new_res_ptr, n_cols, eps,
                         HAS_RES: tl.constexpr, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(x_ptr + row * n_cols + cols, mask=mask, other=0.0)
    if HAS_RES:
        # residual + x rounded to the model dtype, as the unfused `residual + hidden` does
        x = (x.to(tl.float32) + tl.load(res_ptr + row * n_cols + cols, mask=mask, other=0.0).to(tl.float32)).to(x.dtype)
        tl.store(new_res_ptr + row * n_cols + cols, x, mask=mask)
    xf = x.to(tl.float32)
    var = tl.sum(xf * xf, axis=0) / n_cols
    normed = (xf * tl.rsqrt(var + eps)).to(x.dtype)
    w = tl.load(w_ptr + cols, mask=mask, other=0.0)
    tl.store(out_ptr + row * n_cols + cols, (w.to(tl.float32) * normed.to(tl.float32)).to(x.dtype), mask=mask)


def add_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float, residual: torch.Tensor | None = None):
    """RMSNorm of (residual + x) -> (normed, residual + x); residual None: (normed, x)."""
    x = x.contiguous()
    out = torch.empty_like(x)
    new_res = torch.empty_like(x) if residual is not None else x
    n_cols = x.shape[-1]
    _add_rms_norm_kernel[(x.numel() // n_cols,)](
        x, residual if residual is not None else x, weight, out, new_res, n_cols, eps,
        HAS_RES=residual is not None, BLOCK=triton.next_power_of_2(n_cols),
    )
    return out, new_res


@triton.jit
def _rotate_in_place(base, d, mask, c, s, HALF: tl.constexpr):
    """Rotate the halves at base + d and base + HALF + d (a row per head) by (c, s) in float32,
    store them back rounded, and return them."""
    x1 = tl.load(base + d, mask=mask, other=0.0)
    x2 = tl.load(base + HALF + d, mask=mask, other=0.0)
    x1f, x2f = x1.to(tl.float32), x2.to(tl.float32)
    r1, r2 = (x1f * c - x2f * s).to(x1.dtype), (x2f * c + x1f * s).to(x1.dtype)
    tl.store(base + d, r1, mask=mask)
    tl.store(base + HALF + d, r2, mask=mask)
    return r1, r2


@triton.jit
def _rotary_store_kernel(q_ptr, k_ptr, v_ptr, pos_ptr, cos_ptr, sin_ptr, slot_ptr, k_cache_ptr, v_cache_ptr,
                         stride_qt, stride_qh, stride_kt, stride_kh, stride_vt, stride_vh,
                         stride_cs, stride_ch, n_heads, n_kv_heads,
                         HALF: tl.constexpr, BLOCK_H: tl.constexpr, BLOCK_KV: tl.constexpr):
    t = tl.program_id(0).to(tl.int64)
    pos = tl.load(pos_ptr + t)
    slot = tl.load(slot_ptr + t)
    d = tl.arange(0, HALF)[None, :]
    # cos/sin tables hold [freqs, freqs]: the first half is enough
    c = tl.load(cos_ptr + pos * 2 * HALF + d).to(tl.float32)
    s = tl.load(sin_ptr + pos * 2 * HALF + d).to(tl.float32)
    # queries: rotated in place
    h = tl.arange(0, BLOCK_H)[:, None]
    _rotate_in_place(q_ptr + t * stride_qt + h * stride_qh, d, h < n_heads, c, s, HALF)
    # keys: rotated in place and into the cache slot; values copied beside them
    hk = tl.arange(0, BLOCK_KV)[:, None]
    kv_mask = hk < n_kv_heads
    k1r, k2r = _rotate_in_place(k_ptr + t * stride_kt + hk * stride_kh, d, kv_mask, c, s, HALF)
    slot_base = slot * stride_cs + hk * stride_ch
    tl.store(k_cache_ptr + slot_base + d, k1r, mask=kv_mask)
    tl.store(k_cache_ptr + slot_base + HALF + d, k2r, mask=kv_mask)
    dv = tl.arange(0, 2 * HALF)[None, :]
    v = tl.load(v_ptr + t * stride_vt + hk * stride_vh + dv, mask=kv_mask, other=0.0)
    tl.store(v_cache_ptr + slot_base + dv, v, mask=kv_mask)


def rotary_store_(q, k, v, positions, cos, sin, k_cache, v_cache, slot_mapping) -> torch.Tensor:
    """Rotate q [T, H, D] and k [T, Hkv, D] in place at each token's position (cos/sin
    [max_pos, D]), and write rotated k and v into the caches [..., page, Hkv, D] at
    slot_mapping [T]: one launch for what is otherwise four (two rotaries, two index copies)."""
    assert q.stride(-1) == k.stride(-1) == v.stride(-1) == 1
    assert k_cache.stride(-1) == 1 and k_cache.stride(0) == k_cache.shape[1] * k_cache.stride(1)
    assert v_cache.stride() == k_cache.stride()
    heads, kv_heads, dim = q.shape[1], k.shape[1], q.shape[2]
    _rotary_store_kernel[(q.shape[0],)](
        q, k, v, positions, cos, sin, slot_mapping, k_cache, v_cache,
        q.stride(0), q.stride(1), k.stride(0), k.stride(1), v.stride(0), v.stride(1),
        k_cache.stride(1), k_cache.stride(2), heads, kv_heads,
        HALF=dim // 2, BLOCK_H=triton.next_power_of_2(heads), BLOCK_KV=triton.next_power_of_2(kv_heads),
    )
    return q


@triton.jit
def _silu_mul_kernel(gu_ptr, out_ptr, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    g = tl.load(gu_ptr + row * 2 * n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(gu_ptr + row * 2 * n_cols + n_cols + cols, mask=mask, other=0.0).to(tl.float32)
    out = g / (1.0 + tl.exp(-g)) * u
    tl.store(out_ptr + row * n_cols + cols, out.to(out_ptr.dtype.element_ty), mask=mask)


def silu_mul(gate_up: torch.Tensor) -> torch.Tensor:
    """[T, 2I] (gate then up) -> silu(gate) * up, [T, I]."""
    gate_up = gate_up.contiguous()
    rows, n_cols = gate_up.shape[0], gate_up.shape[1] // 2
    out = torch.empty(rows, n_cols, dtype=gate_up.dtype, device=gate_up.device)
    block = 1024
    _silu_mul_kernel[(rows, triton.cdiv(n_cols, block))](gate_up, out, n_cols, BLOCK=block)
    return out
