"""Reference attention in plain torch: any device, any KV layout, padded or ragged.

It gathers each sequence's K/V from the cache through its block table and runs SDPA with an
explicit mask. Slow (a gather per step, a loop over prefilling sequences) but short enough to
check by eye; the fast backends are tested against it.

Why an explicit mask: SDPA's is_causal aligns the causal triangle top-left, which is wrong as
soon as a query chunk is shorter than its keys (chunked prefill, decode). Here query r of a
sequence with q new tokens and L cache entries sits at cache index c = L - q + r and sees keys
key_start <= j <= c (and j > c - window for sliding-window layers). A left-pad query sees only
itself: it has no valid key, and an all-masked row would give NaN that a later layer's
zero-weight times NaN would spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import accumulate

import torch
import torch.nn.functional as F

from engines.attention.metadata import AttentionMetadata

try:  # enable_gqa arrived in torch 2.5
    F.scaled_dot_product_attention(
        torch.zeros(1, 2, 1, 4), torch.zeros(1, 1, 1, 4), torch.zeros(1, 1, 1, 4), enable_gqa=True
    )
    _HAS_GQA = True
except TypeError:
    _HAS_GQA = False


def _sdpa(q, k, v, mask, scale):
    """q [B, H, Q, D], k/v [B, Hkv, K, D], mask [B, 1, Q, K] bool -> [B, H, Q, D]."""
    if k.shape[1] != q.shape[1]:
        if _HAS_GQA:
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
        rep = q.shape[1] // k.shape[1]
        k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)


@dataclass
class _Plan:
    """Per-step index tensors, shared by every layer."""

    gather: torch.Tensor  # [N, Kmax] physical slot of each sequence's cache index
    starts: list[int]  # query_start on the host
    decode_rows: torch.Tensor  # sequences with one query token, batched together
    decode_tokens: torch.Tensor  # their token index in the packed batch
    prefill_rows: list[int]
    masks: dict = field(default_factory=dict)  # window -> (decode mask, [per-prefill masks])


class ReferenceAttention:
    name = "reference"

    def __init__(self, scale: float):
        self.scale = scale

    def prepare(self, meta: AttentionMetadata) -> _Plan:
        device = meta.seq_lens.device
        kmax = meta.max_seq_len
        j = torch.arange(kmax, device=device)
        bs = meta.block_size
        gather = meta.block_tables[:, j // bs].long() * bs + (j % bs)
        qlens = meta.query_lens
        starts = [0, *accumulate(qlens)]
        decode = [i for i, q in enumerate(qlens) if q == 1]
        return _Plan(
            gather=gather,
            starts=starts,
            decode_rows=torch.tensor(decode, dtype=torch.long, device=device),
            decode_tokens=torch.tensor([starts[i] for i in decode], dtype=torch.long, device=device),
            prefill_rows=[i for i, q in enumerate(qlens) if q > 1],
        )

    def _masks(self, meta: AttentionMetadata, plan: _Plan, window: int | None):
        if window in plan.masks:
            return plan.masks[window]
        device = meta.seq_lens.device
        j = torch.arange(meta.max_seq_len, device=device)
        dec_mask = None
        if len(plan.decode_rows):
            lens = meta.seq_lens.long()[plan.decode_rows][:, None]
            start = meta.key_start.long()[plan.decode_rows][:, None]
            c = lens - 1
            ok = (j[None] <= c) & ((j[None] >= start) | (j[None] == c))
            if window is not None:
                ok &= j[None] > c - window
            dec_mask = ok[:, None, None, :]  # [Nd, 1, 1, Kmax]
        pre_masks = []
        for i in plan.prefill_rows:
            q, L, s = meta.query_lens[i], meta.seq_lens_host[i], meta.key_start_host[i]
            c = torch.arange(L - q, L, device=device)[:, None]
            jj = j[None, :L]
            ok = (jj <= c) & ((jj >= s) | (jj == c))
            if window is not None:
                ok &= jj > c - window
            pre_masks.append(ok[None, None])  # [1, 1, q, L]
        plan.masks[window] = (dec_mask, pre_masks)
        return plan.masks[window]

    def __call__(
        self,
        q: torch.Tensor,  # [T, H, D]
        k: torch.Tensor,  # [T, Hkv, D]
        v: torch.Tensor,
        k_cache: torch.Tensor,  # [num_blocks, block_size, Hkv, D]
        v_cache: torch.Tensor,
        meta: AttentionMetadata,
        plan: _Plan,
        window: int | None = None,
    ) -> torch.Tensor:
        kv_heads, head_dim = k_cache.shape[2], k_cache.shape[3]
        k_flat = k_cache.view(-1, kv_heads, head_dim)
        v_flat = v_cache.view(-1, kv_heads, head_dim)
        k_flat.index_copy_(0, meta.slot_mapping, k)
        v_flat.index_copy_(0, meta.slot_mapping, v)

        out = torch.empty_like(q)
        dec_mask, pre_masks = self._masks(meta, plan, window)
        if dec_mask is not None:
            slots = plan.gather[plan.decode_rows]  # [Nd, Kmax]
            kd = k_flat[slots].transpose(1, 2)  # [Nd, Hkv, Kmax, D]
            vd = v_flat[slots].transpose(1, 2)
            qd = q[plan.decode_tokens][:, :, None, :]  # [Nd, H, 1, D]
            out[plan.decode_tokens] = _sdpa(qd, kd, vd, dec_mask, self.scale)[:, :, 0, :]
        for mask, i in zip(pre_masks, plan.prefill_rows):
            a, b, L = plan.starts[i], plan.starts[i + 1], meta.seq_lens_host[i]
            slots = plan.gather[i, :L]
            ki = k_flat[slots].transpose(0, 1)[None]  # [1, Hkv, L, D]
            vi = v_flat[slots].transpose(0, 1)[None]
            qi = q[a:b].transpose(0, 1)[None]  # [1, H, q, D]
            out[a:b] = _sdpa(qi, ki, vi, mask, self.scale)[0].transpose(0, 1)
        return out
