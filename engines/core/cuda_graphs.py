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
from engines.core.model_runner import fill_pending
from engines.core.plan import Chunk
from engines.transfer import copy_into


def capture(run, device: torch.device, pool) -> tuple[torch.cuda.CUDAGraph, torch.Tensor]:
    """Run `run` twice on a side stream (kernels compiled, allocator settled), then capture
    it into a graph drawing on `pool`: (the graph, the output tensor it refills)."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(2):
            run()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = run()
    return graph, out


def fill_block_tables(table_array: np.ndarray, tables: list[list[int]]) -> None:
    """Write each sequence's block table into the first entries of its row of a static
    [rows, max_blocks] array (the rest of the row keeps what it holds: the scratch block)."""
    n = len(tables)
    width = np.fromiter(map(len, tables), dtype=np.int64, count=n)
    rows = np.repeat(np.arange(n), width)
    cols = np.arange(rows.size) - np.repeat(np.cumsum(width) - width, width)
    table_array[rows, cols] = np.fromiter(chain.from_iterable(tables), dtype=np.int32, count=rows.size)


def load_previous(buffer: torch.Tensor, previous: torch.Tensor | None) -> None:
    """Copy the last step's sampled tokens (device) into a graph's static buffer, on the device."""
    if previous is None or not previous.numel():
        return
    if previous.numel() > buffer.numel():
        raise RuntimeError(f"{previous.numel()} tokens from the last step, more than max_batch {buffer.numel()}")
    buffer[: previous.numel()].copy_(previous)


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
        # Two packed static buffers (int64 and int32): each step fills them with one copy
        # from the host, which does not wait for the device. The named inputs are views.
        self.longs = torch.zeros(3, n, dtype=torch.long, device=device)
        self.input_ids, self.positions, self.slot_mapping = self.longs  # input ids may be pending stand-ins
        self.ints = torch.zeros(n * (3 + max_blocks), dtype=torch.int32, device=device)
        self.seq_lens = self.ints[:n]
        self.key_start = self.ints[n : 2 * n]
        # the attention's launch order of the sequences: longest context first, so that no
        # SM is left alone with a long one at the end of the launch
        self.order = self.ints[2 * n : 3 * n]
        self.block_tables = self.ints[3 * n :].view(n, max_blocks)
        self.query_start = torch.arange(n + 1, dtype=torch.int32, device=device)
        self.slot_mapping.fill_(self.scratch * self.bs)  # what the capture runs on: the scratch block
        self.seq_lens.fill_(1)
        self.order.copy_(torch.arange(n, dtype=torch.int32, device=device))
        self.block_tables.fill_(self.scratch)
        # the previous step's sampled tokens, which pending input ids stand for
        self.previous = torch.zeros(n, dtype=torch.long, device=device)
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
        ids = fill_pending(self.input_ids[:b], self.previous)
        hidden = self.model(ids, self.positions[:b], self.storage.layers, meta, plan)
        return self.model.logits(hidden)

    def _capture(self, device) -> None:
        pool = torch.cuda.graph_pool_handle()
        attention = self.model.attention
        for b in reversed(self.buckets):  # largest first: the smaller ones reuse its memory
            meta, plan = self._meta(b), attention.decode_plan(b, device, self.order[:b])
            graph, logits = capture(lambda: self._forward(b, meta, plan), device, pool)  # noqa: B023 (called at once)
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

    def run(self, chunks: list[Chunk], previous: torch.Tensor | None = None) -> torch.Tensor:
        """One decode token per chunk -> logits [len(chunks), vocab]. previous: the last
        step's sampled tokens on the device, for the pending input ids."""
        n = len(chunks)
        b = next(size for size in self.buckets if size >= n)
        bs, full = self.bs, self.buckets[-1]
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
        # rows n..full: token 0 at position 0, reading and writing only the scratch block
        pad = full - n
        longs = np.array([ids + [0] * pad, pos + [0] * pad, slots + [self.scratch * bs] * pad], dtype=np.int64)
        ints = np.full(full * (3 + self.max_blocks), self.scratch, dtype=np.int32)
        ints[:n] = lens
        ints[n:full] = 1
        ints[full : full + n] = starts
        ints[full + n : 2 * full] = 0
        ints[2 * full : 2 * full + n] = np.argsort(-np.asarray(lens), kind="stable")
        ints[2 * full + n : 3 * full] = np.arange(n, full)
        fill_block_tables(ints[3 * full :].reshape(full, self.max_blocks), tables)
        copy_into(self.longs, longs)
        copy_into(self.ints, ints)
        load_previous(self.previous, previous)
        if not self.capture:
            return self._forward(b, self._meta(b), self.model.attention.decode_plan(b, self.device, self.order[:b]))[:n]
        graph, logits, _meta, _plan = self.graphs[b]
        graph.replay()
        return logits[:n]
