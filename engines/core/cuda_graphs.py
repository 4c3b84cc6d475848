"""Decode steps replayed from CUDA graphs, one graph per batch-size bucket.

A small model's decode step is a few hundred short kernels; launched one by one from Python
they take longer than the GPU needs to run them. Captured once per bucket (1, 2, 4, ... up to
max_batch) on static input buffers, a step is one graph replay. A batch of n sequences runs in
the smallest bucket >= n; the padding rows feed token 0 and read and write only the KV
cache's scratch block, and their logits are dropped.
"""

from __future__ import annotations

from itertools import chain

import numpy as np
import torch

from engines.attention.metadata import AttentionMetadata
from engines.core.plan import Chunk


def buckets_up_to(max_batch: int) -> list[int]:
    sizes = [1, 2, 4, 8] + list(range(16, max_batch + 1, 16))
    return sorted({b for b in sizes if b <= max_batch} | {max_batch})


class DecodeGraphs:
    """capture=False runs the same static buffers eagerly: the CPU tests check with it that
    the buffers are filled right (padding rows included) without a GPU."""

    def __init__(self, model, storage, max_batch: int, max_blocks: int, device: torch.device, capture: bool = True):
        self.model = model
        self.storage = storage
        self.bs = storage.block_size
        self.scratch = storage.scratch_block
        self.max_blocks = max_blocks
        self.buckets = buckets_up_to(max_batch)
        n = self.buckets[-1]
        i32 = dict(dtype=torch.int32, device=device)
        self.input_ids = torch.zeros(n, dtype=torch.long, device=device)
        self.positions = torch.zeros(n, dtype=torch.long, device=device)
        self.slot_mapping = torch.full((n,), self.scratch * self.bs, dtype=torch.long, device=device)
        self.seq_lens = torch.ones(n, **i32)
        self.key_start = torch.zeros(n, **i32)
        self.query_start = torch.arange(n + 1, **i32)
        self.block_tables = torch.full((n, max_blocks), self.scratch, **i32)
        # bucket -> (graph, its logits output, and the metadata and attention plan whose
        # tensors the graph reads: they must outlive it)
        self.graphs: dict[int, tuple] = {}
        self.device = device
        self.capture = capture
        if capture:
            self._capture(device)

    def _meta(self, b: int) -> AttentionMetadata:
        return AttentionMetadata(
            query_start=self.query_start[: b + 1], seq_lens=self.seq_lens[:b], key_start=self.key_start[:b],
            block_tables=self.block_tables[:b], slot_mapping=self.slot_mapping[:b], query_lens=[1] * b,
            seq_lens_host=[1] * b, key_start_host=[0] * b, block_size=self.bs,
        )

    def _forward(self, b, meta, plan):
        hidden = self.model(self.input_ids[:b], self.positions[:b], self.storage.layers, meta, plan)
        return self.model.logits(hidden)

    def _capture(self, device) -> None:
        pool = torch.cuda.graph_pool_handle()
        attention = self.model.attention
        for b in reversed(self.buckets):  # largest first: the smaller ones reuse its memory
            meta, plan = self._meta(b), attention.decode_plan(b, device)
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side):  # compile the kernels and settle the allocator
                for _ in range(2):
                    self._forward(b, meta, plan)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph, pool=pool):
                logits = self._forward(b, meta, plan)
            self.graphs[b] = (graph, logits, meta, plan)
        torch.cuda.synchronize(device)

    def fits(self, chunks: list[Chunk]) -> bool:
        """A decode-only step: one new cache entry per sequence, few enough sequences."""
        if len(chunks) > self.buckets[-1]:
            return False
        for c in chunks:
            if not c.wasted and (c.num_tokens != 1 or c.num_pad):
                return False
        return True

    def run(self, chunks: list[Chunk]) -> torch.Tensor:
        """One decode token per chunk -> logits [len(chunks), vocab]."""
        n = len(chunks)
        b = next(size for size in self.buckets if size >= n)
        bs = self.bs
        # Python lists first, one conversion each: per-element numpy writes cost more
        ids, pos, slots, lens, starts, tables = [], [], [], [], [], []
        for chunk in chunks:
            seq = chunk.seq
            entry = seq.cache_len
            table = seq.block_table
            ids.append(seq.token_ids[-1] if chunk.wasted else seq.token_ids[seq.num_computed])
            pos.append(entry - seq.num_pad)
            slots.append(table[entry // bs] * bs + entry % bs)
            lens.append(entry + 1)
            starts.append(seq.num_pad)
            tables.append(table)
        pad = b - n  # padding rows: token 0 at position 0, reading and writing the scratch block
        ids = np.array(ids + [0] * pad, dtype=np.int64)
        pos = np.array(pos + [0] * pad, dtype=np.int64)
        slots = np.array(slots + [self.scratch * bs] * pad, dtype=np.int64)
        lens = np.array(lens + [1] * pad, dtype=np.int32)
        starts = np.array(starts + [0] * pad, dtype=np.int32)
        width = np.fromiter(map(len, tables), dtype=np.int64, count=n)
        rows = np.repeat(np.arange(n), width)
        cols = np.arange(rows.size) - np.repeat(np.cumsum(width) - width, width)
        table_array = np.full((b, self.max_blocks), self.scratch, dtype=np.int32)
        table_array[rows, cols] = np.fromiter(chain.from_iterable(tables), dtype=np.int32, count=rows.size)
        self.input_ids[:b].copy_(torch.from_numpy(ids))
        self.positions[:b].copy_(torch.from_numpy(pos))
        self.slot_mapping[:b].copy_(torch.from_numpy(slots))
        self.seq_lens[:b].copy_(torch.from_numpy(lens))
        self.key_start[:b].copy_(torch.from_numpy(starts))
        self.block_tables[:b].copy_(torch.from_numpy(table_array))
        if not self.capture:
            return self._forward(b, self._meta(b), self.model.attention.decode_plan(b, self.device))[:n]
        graph, logits, _meta, _plan = self.graphs[b]
        graph.replay()
        return logits[:n]
