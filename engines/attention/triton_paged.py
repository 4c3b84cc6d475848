"""Paged attention for packed batches, in Triton: prefill chunks and decode alike.

One program computes one tile of query tokens of one sequence against one KV head. The
query heads that share that KV head (grouped-query attention) are folded into the tile's
rows, so K and V are read once per group, straight from the cache pages through the block
table: no gather into a new tensor, whatever the layout (padded rectangle, slot, paged).
Causality is bottom-right aligned on cache indices (a chunk's queries sit at the end of its
sequence's keys), pads before key_start are masked (a pad query sees only itself), and a
sliding window is a further mask. Softmax is online (flash attention), in float32.

Work is described by a host-built tile list (sequence, first query token), so the grid has
no data-dependent shape: a decode step's launch can be captured in a CUDA graph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import triton
import triton.language as tl

from engines.attention.metadata import AttentionMetadata
from engines.transfer import pack_to_device


@triton.jit
def _online_softmax_step(s, v, m_i, l_i, acc, PRECISION: tl.constexpr):
    """Fold one key tile's scores s [M, N] (log2 domain) and values v [N, D] into the
    running max m_i, normaliser l_i and output acc."""
    m_new = tl.maximum(m_i, tl.max(s, 1))
    p = tl.exp2(s - m_new[:, None])
    alpha = tl.exp2(m_i - m_new)
    l_i = l_i * alpha + tl.sum(p, 1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return m_new, l_i, acc


# The block table's row stride is the batch's longest table: it changes from step to step,
# and a value Triton specialised on would mean a new compile mid-run.
@triton.jit(do_not_specialize=["stride_bt"])
def _paged_attention_kernel(
    q_ptr, k_cache_ptr, v_cache_ptr, out_ptr,
    block_tables_ptr, seq_lens_ptr, query_start_ptr, key_start_ptr,
    tile_seq_ptr, tile_qstart_ptr,
    scale_log2, window,
    stride_qt, stride_qh,
    stride_kb, stride_ks, stride_kh,
    stride_ot, stride_oh,
    stride_bt,
    BLOCK_SIZE: tl.constexpr,  # KV page size (tokens)
    GROUP: tl.constexpr,  # query heads per KV head
    BLOCK_Q: tl.constexpr,  # query tokens per tile
    BLOCK_N: tl.constexpr,  # keys per iteration
    HEAD_DIM: tl.constexpr,
    PRECISION: tl.constexpr,  # "ieee" keeps float32 exact (no TF32); ignored for bf16
):
    tile = tl.program_id(0)
    kv_head = tl.program_id(1)
    seq = tl.load(tile_seq_ptr + tile)
    if seq < 0:  # an unused tile of a static (CUDA-graph) tile list
        return
    q_first = tl.load(tile_qstart_ptr + tile)  # packed index of the tile's first query token
    seq_q_start = tl.load(query_start_ptr + seq)
    seq_q_end = tl.load(query_start_ptr + seq + 1)
    seq_len = tl.load(seq_lens_ptr + seq)
    key_start = tl.load(key_start_ptr + seq)

    BLOCK_M: tl.constexpr = BLOCK_Q * GROUP
    rows = tl.arange(0, BLOCK_M)
    token = q_first + rows // GROUP  # [M] packed token index
    head = kv_head * GROUP + rows % GROUP  # [M] query head
    row_ok = token < seq_q_end
    # cache index of each query: the chunk's queries are the last entries of the sequence
    cache_idx = seq_len - (seq_q_end - seq_q_start) + (token - seq_q_start)

    d = tl.arange(0, HEAD_DIM)
    q = tl.load(
        q_ptr + token[:, None] * stride_qt + head[:, None] * stride_qh + d[None, :],
        mask=row_ok[:, None], other=0.0,
    )

    m_i = tl.full([BLOCK_M], -1.0e30, dtype=tl.float32)
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, HEAD_DIM], dtype=tl.float32)

    # keys this tile needs: up to its last query's cache index (and, with a window, from its
    # first query's window start). Key tiles start at key_start, the first real key, not at
    # cache index 0: a padded row then reads no pads, and a token's keys fall into the same
    # tiles whatever its row's padding (the online softmax sums in the same order).
    offset = seq_len - (seq_q_end - seq_q_start) - seq_q_start  # cache index = token + offset
    last = tl.minimum(q_first + BLOCK_Q, seq_q_end) + offset
    first = key_start
    # Key tiles that every query of this tile sees whole (they end at or before the first
    # query's cache index) need no mask: a decode step's keys, and all but the diagonal of a
    # prompt's. Masking a visible key is a no-op, so both loops compute the same numbers.
    unmasked_end = first + ((q_first + offset + 1 - first) // BLOCK_N) * BLOCK_N
    if window > 0:
        first = tl.maximum(q_first + offset - window + 1, key_start)
        first = key_start + ((first - key_start) // BLOCK_N) * BLOCK_N
        unmasked_end = first  # window edges are masked in every tile
    for start in range(first, unmasked_end, BLOCK_N):
        j = start + tl.arange(0, BLOCK_N)
        page = tl.load(block_tables_ptr + seq * stride_bt + j // BLOCK_SIZE)
        slot_off = page.to(tl.int64) * stride_kb + (j % BLOCK_SIZE) * stride_ks + kv_head * stride_kh
        k = tl.load(k_cache_ptr + slot_off[:, None] + d[None, :])
        v = tl.load(v_cache_ptr + slot_off[:, None] + d[None, :])
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2  # [M, N], log2 domain
        m_i, l_i, acc = _online_softmax_step(s, v, m_i, l_i, acc, PRECISION)
    for start in range(tl.maximum(first, unmasked_end), last, BLOCK_N):
        j = start + tl.arange(0, BLOCK_N)  # [N] cache indices
        j_ok = j < last
        page = tl.load(block_tables_ptr + seq * stride_bt + j // BLOCK_SIZE, mask=j_ok, other=0)
        slot_off = page.to(tl.int64) * stride_kb + (j % BLOCK_SIZE) * stride_ks + kv_head * stride_kh
        k = tl.load(k_cache_ptr + slot_off[:, None] + d[None, :], mask=j_ok[:, None], other=0.0)
        v = tl.load(v_cache_ptr + slot_off[:, None] + d[None, :], mask=j_ok[:, None], other=0.0)

        s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * scale_log2
        c = cache_idx[:, None]
        jj = j[None, :]
        ok = (jj <= c) & ((jj >= key_start) | (jj == c)) & j_ok[None, :] & row_ok[:, None]
        if window > 0:
            ok = ok & (jj > c - window)
        s = tl.where(ok, s, float("-inf"))
        m_i, l_i, acc = _online_softmax_step(s, v, m_i, l_i, acc, PRECISION)

    out = acc / tl.where(l_i > 0, l_i, 1.0)[:, None]
    tl.store(
        out_ptr + token[:, None] * stride_ot + head[:, None] * stride_oh + d[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=row_ok[:, None],
    )


@dataclass
class TileList:
    """The work of one launch: (sequence, first packed query token) per program."""

    seq: torch.Tensor  # [P] int32
    qstart: torch.Tensor  # [P] int32
    block_q: int

    @property
    def size(self) -> int:
        return int(self.seq.shape[0])


def tile_arrays(query_lens: list[int], rows: list[int], block_q: int) -> tuple[np.ndarray, np.ndarray]:
    """(sequence, first packed query token) of each tile of block_q query tokens covering the
    given sequences, in their order."""
    starts = np.concatenate([[0], np.cumsum(query_lens)])
    seq, qstart = [], []
    for i in rows:
        for first in range(int(starts[i]), int(starts[i + 1]), block_q):
            seq.append(i)
            qstart.append(first)
    return np.asarray(seq, dtype=np.int32), np.asarray(qstart, dtype=np.int32)


def tiles(query_lens: list[int], rows: list[int], block_q: int, device) -> TileList:
    """Tiles of block_q query tokens covering the given sequences, on the device."""
    seq_t, qstart_t = pack_to_device(list(tile_arrays(query_lens, rows, block_q)), np.int32, device)
    return TileList(seq_t, qstart_t, block_q)


@dataclass
class _Plan:
    decode: TileList | None
    prefill: TileList | None
    static: bool = False  # fixed-length tile lists (CUDA graphs): some rows may be left unattended


def _block_q(group: int, target_rows: int) -> int:
    """Query tokens per tile so that the tile has at least target_rows rows (tl.dot needs 16)."""
    return max(1, target_rows // group)


@dataclass(frozen=True)
class TileConfig:
    """One launch shape: tile rows (query tokens x grouped heads), keys per iteration, and
    Triton's warps and pipeline stages (None: Triton's defaults)."""

    rows: int
    block_n: int = 64
    num_warps: int | None = None
    num_stages: int | None = None

    def launch_options(self) -> dict:
        return {k: v for k, v in (("num_warps", self.num_warps), ("num_stages", self.num_stages)) if v is not None}


# Prefill: no tile shape of benchmarks/attention_configs.py beat 64 rows x 64 keys by more
# than 1% on an H200 (anchor-a's prompts, ~120 TFLOP/s for head_dim 128).
PREFILL = TileConfig(rows=64)
# Decode: one token per sequence, a small tile, K/V read once per group. 128 keys per
# iteration, 4 warps, 2 stages: the fastest measured there for head_dim 128 (3.49 TB/s of
# K/V read with 256 sequences of anchor-a's contexts, vs 3.42 for 64 keys) and 64 alike.
DECODE = TileConfig(rows=16, block_n=128, num_warps=4, num_stages=2)


def write_cache(k, v, k_cache, v_cache, slot_mapping):
    """Store the step's keys and values [T, Hkv, D] at their cache slots."""
    kv_heads, head_dim = k_cache.shape[2], k_cache.shape[3]
    k_cache.view(-1, kv_heads, head_dim).index_copy_(0, slot_mapping, k)
    v_cache.view(-1, kv_heads, head_dim).index_copy_(0, slot_mapping, v)


class TritonPagedAttention:
    name = "triton"
    accepts_written_kv = True  # the caller may have written this step's K/V to the cache already

    def __init__(
        self, scale: float, num_heads: int, num_kv_heads: int, head_dim: int, batch_invariant: bool = False,
        decode: TileConfig = DECODE, prefill: TileConfig = PREFILL,
    ):
        if head_dim & (head_dim - 1):
            raise ValueError(f"the Triton attention needs a power-of-two head_dim, got {head_dim}")
        self.scale = scale
        self.group = num_heads // num_kv_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = head_dim
        # Batch-invariant: a decode token is computed in the same tile shape as a prompt
        # token (same matrix instructions, same rounding), at the cost of idle tile rows.
        self.prefill_config = prefill
        self.decode_config = prefill if batch_invariant else decode
        # Batch-invariant: no multiply-add contraction, so that a key tile computes the same
        # bits in the masked and the unmasked loop (the compiler may fuse only in one).
        self.fp_fusion = not batch_invariant
        self.prefill_block_q = _block_q(self.group, prefill.rows)
        self.decode_block_q = _block_q(self.group, self.decode_config.rows)

    @staticmethod
    def _rows(query_lens: list[int], seq_lens: list[int]) -> tuple[list[int], list[int]]:
        """The decode rows, longest context first (the GPU starts the long programs early, and
        no SM is left alone with one at the end of the launch), and the prefill rows."""
        decode = sorted((i for i, q in enumerate(query_lens) if q == 1), key=lambda i: -seq_lens[i])
        return decode, [i for i, q in enumerate(query_lens) if q > 1]

    def prepare(self, meta: AttentionMetadata) -> _Plan:
        device = meta.seq_lens.device
        qlens = meta.query_lens
        decode_rows, prefill_rows = self._rows(qlens, meta.seq_lens_host)
        return _Plan(
            decode=tiles(qlens, decode_rows, self.decode_block_q, device) if decode_rows else None,
            prefill=tiles(qlens, prefill_rows, self.prefill_block_q, device) if prefill_rows else None,
        )

    # Static plans: for a forward captured in a CUDA graph, the tile lists are device buffers
    # of a fixed length, refilled before each replay; tiles past the step's own are -1 (the
    # kernel returns at once).

    def max_prefill_tiles(self, num_tokens: int, num_seqs: int) -> int:
        """Most prefill tiles a step of num_tokens tokens in num_seqs sequences can have."""
        return num_tokens // self.prefill_block_q + num_seqs

    def static_tiles(self, query_lens: list[int], seq_lens: list[int]) -> list[np.ndarray]:
        """A step's tiles as host arrays for static_plan's buffers: decode sequences and their
        query tokens, prefill sequences and their tiles' first query tokens."""
        decode_rows, prefill_rows = self._rows(query_lens, seq_lens)
        decode_seq, decode_qstart = tile_arrays(query_lens, decode_rows, self.decode_block_q)
        return [decode_seq, decode_qstart, *tile_arrays(query_lens, prefill_rows, self.prefill_block_q)]

    def static_plan(self, decode_seq: torch.Tensor, decode_qstart: torch.Tensor,
                    prefill_seq: torch.Tensor, prefill_qstart: torch.Tensor) -> _Plan:
        """A plan over fixed-length tile buffers (CUDA graphs of mixed steps)."""
        return _Plan(
            decode=TileList(decode_seq, decode_qstart, self.decode_block_q),
            prefill=TileList(prefill_seq, prefill_qstart, self.prefill_block_q),
            static=True,
        )

    def decode_plan(self, num_seqs: int, device, order: torch.Tensor | None = None) -> _Plan:
        """A static plan for a decode-only batch of num_seqs sequences (CUDA graphs). order:
        a device buffer [num_seqs] int32 of the sequences in launch order, refilled before each
        replay (default: 0..num_seqs-1)."""
        if order is None:
            return _Plan(decode=tiles([1] * num_seqs, list(range(num_seqs)), self.decode_block_q, device), prefill=None)
        # one query per sequence: sequence i's query is packed token i
        return _Plan(decode=TileList(order, order, self.decode_block_q), prefill=None)

    def __call__(
        self, q, k, v, k_cache, v_cache, meta: AttentionMetadata, plan: _Plan, window=None, kv_written: bool = False
    ):
        """kv_written: the step's keys and values are in the cache already (the fused rotary,
        engines.model.fused.rotary_store_, wrote them)."""
        head_dim = k_cache.shape[3]
        if not kv_written:
            write_cache(k, v, k_cache, v_cache, meta.slot_mapping)
        # a static plan's padding tokens belong to no tile: zeros, not whatever memory held
        out = torch.zeros_like(q) if plan.static else torch.empty_like(q)
        for work, config in ((plan.decode, self.decode_config), (plan.prefill, self.prefill_config)):
            if work is None or work.size == 0:
                continue
            _paged_attention_kernel[(work.size, self.num_kv_heads)](
                q, k_cache, v_cache, out,
                meta.block_tables, meta.seq_lens, meta.query_start, meta.key_start,
                work.seq, work.qstart,
                self.scale * 1.4426950408889634, window or 0,
                q.stride(0), q.stride(1),
                k_cache.stride(0), k_cache.stride(1), k_cache.stride(2),
                out.stride(0), out.stride(1),
                meta.block_tables.stride(0),
                BLOCK_SIZE=k_cache.shape[1], GROUP=self.group, BLOCK_Q=work.block_q,
                BLOCK_N=config.block_n, HEAD_DIM=head_dim,
                PRECISION="ieee" if q.dtype == torch.float32 else "tf32",
                enable_fp_fusion=self.fp_fusion,
                **config.launch_options(),
            )
        return out
