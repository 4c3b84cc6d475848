"""Turns a step plan into one packed forward and the sampled tokens.

Shared by all four in-repo engines: a padded batch is only a packed batch whose chunks carry
left pads (and finished rows computing throwaway tokens), so there is one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from engines.attention.metadata import AttentionMetadata
from engines.core.plan import Chunk, StepPlan
from engines.core.sampling import SamplingBatch, sample
from engines.kv.base import KVStorage
from engines.model.llama import CausalLM

PAD_TOKEN_ID = 0  # what a pad position feeds; its output is masked from every real token
MAX_FORWARD_TOKENS = 16384  # a larger step (a padded batch's prefill) runs as several forwards


@dataclass
class Batch:
    input_ids: torch.Tensor  # [T]
    positions: torch.Tensor  # [T]
    meta: AttentionMetadata
    sample_index: torch.Tensor  # [S] rows of the packed batch whose logits are sampled
    sample_chunks: list[Chunk]  # the chunk each sampled row belongs to
    sampling: SamplingBatch


def _chunk_tokens(chunk: Chunk) -> tuple[list[int], np.ndarray, int]:
    """Token ids, RoPE positions and the first cache index this chunk writes."""
    seq = chunk.seq
    start = seq.cache_len
    if chunk.wasted:  # a finished row of a padded batch: feeds its last token again
        return [seq.token_ids[-1]], np.array([start - seq.num_pad]), start
    ids = seq.token_ids[seq.num_computed : seq.num_computed + chunk.num_tokens]
    positions = np.arange(seq.num_computed, seq.num_computed + chunk.num_tokens)
    if chunk.num_pad:
        ids = [PAD_TOKEN_ID] * chunk.num_pad + ids
        positions = np.concatenate([np.zeros(chunk.num_pad, dtype=np.int64), positions])
    return ids, positions, start


def split_chunks(chunks: list[Chunk], max_tokens: int) -> list[list[Chunk]]:
    """Consecutive groups of at most max_tokens computed positions (a chunk is never cut:
    a group holds at least one). Sequences are independent, so running the groups one after
    the other computes exactly what one forward would, in bounded activation memory."""
    groups, current, size = [], [], 0
    for chunk in chunks:
        if current and size + chunk.num_entries > max_tokens:
            groups.append(current)
            current, size = [], 0
        current.append(chunk)
        size += chunk.num_entries
    if current:
        groups.append(current)
    return groups


def _sampling_batch(chunks: list[Chunk], device) -> SamplingBatch:
    params = [c.seq.request.sampling for c in chunks]
    if all(p.temperature == 0.0 for p in params):
        return SamplingBatch.build(params, [], device)  # greedy: no per-row tensors
    return SamplingBatch.build(params, [len(c.seq.token_ids) - c.seq.num_prompt for c in chunks], device)


class ModelRunner:
    def __init__(self, model: CausalLM, storage: KVStorage, device: torch.device, graphs=None):
        self.model = model
        self.storage = storage
        self.device = device
        self.block_size = storage.block_size
        self.graphs = graphs  # engines.core.cuda_graphs.DecodeGraphs, or None

    def run(self, plan: StepPlan) -> tuple[list[Chunk], list[int]]:
        """Execute a plan: (the chunks that sampled, their tokens), tokens on the host."""
        if self.graphs is not None and self.graphs.fits(plan.chunks):
            sampled = plan.chunks  # one new position per sequence: every chunk samples
            logits = self.graphs.run(plan.chunks)
            return sampled, sample(logits, _sampling_batch(sampled, self.device)).tolist()
        sampled, tokens = [], []
        for group in split_chunks(plan.chunks, MAX_FORWARD_TOKENS):
            batch = self.build(StepPlan(chunks=group))
            sampled += batch.sample_chunks
            tokens += self.execute(batch)
        return sampled, tokens

    def build(self, plan: StepPlan) -> Batch:
        ids: list[int] = []
        positions, slots = [], []
        qlens, seq_lens, key_start, tables = [], [], [], []
        sample_rows, sample_chunks, params, steps = [], [], [], []
        bs = self.block_size
        for chunk in plan.chunks:
            seq = chunk.seq
            chunk_ids, chunk_pos, start = _chunk_tokens(chunk)
            n = len(chunk_ids)
            entries = np.arange(start, start + n)
            table = np.asarray(seq.block_table, dtype=np.int64)
            slots.append(table[entries // bs] * bs + entries % bs)
            positions.append(chunk_pos)
            ids.extend(chunk_ids)
            qlens.append(n)
            seq_lens.append(start + n)
            key_start.append(seq.num_pad)
            tables.append(seq.block_table)
            if chunk.samples:
                sample_rows.append(len(ids) - 1)
                sample_chunks.append(chunk)
                params.append(seq.request.sampling)
                steps.append(len(seq.token_ids) - seq.num_prompt)
        width = max(len(t) for t in tables)
        table_array = np.zeros((len(tables), width), dtype=np.int32)
        for i, t in enumerate(tables):
            table_array[i, : len(t)] = t
        dev = self.device
        query_start = np.zeros(len(qlens) + 1, dtype=np.int32)
        np.cumsum(qlens, out=query_start[1:])
        meta = AttentionMetadata(
            query_start=torch.from_numpy(query_start).to(dev),
            seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=dev),
            key_start=torch.tensor(key_start, dtype=torch.int32, device=dev),
            block_tables=torch.from_numpy(table_array).to(dev),
            slot_mapping=torch.from_numpy(np.concatenate(slots)).to(dev),
            query_lens=qlens,
            seq_lens_host=seq_lens,
            key_start_host=key_start,
            block_size=bs,
        )
        return Batch(
            input_ids=torch.tensor(ids, dtype=torch.long, device=dev),
            positions=torch.from_numpy(np.concatenate(positions)).to(dev),
            meta=meta,
            sample_index=torch.tensor(sample_rows, dtype=torch.long, device=dev),
            sample_chunks=sample_chunks,
            sampling=SamplingBatch.build(params, steps, dev),
        )

    def execute(self, batch: Batch) -> list[int]:
        """Forward, logits at the sampled rows, sample; the tokens come back to the host."""
        hidden = self.model(batch.input_ids, batch.positions, self.storage.layers, batch.meta)
        if not batch.sample_chunks:
            return []
        logits = self.model.logits(hidden[batch.sample_index])
        return sample(logits, batch.sampling).tolist()
