"""Turns a step plan into one packed forward and the sampled tokens.

Shared by all four in-repo engines: a padded batch is only a packed batch whose chunks carry
left pads (and finished rows computing throwaway tokens), so there is one code path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from engines.api import StepStats
from engines.attention.metadata import AttentionMetadata
from engines.core.plan import Chunk, StepPlan
from engines.core.sampling import SamplingBatch, sample
from engines.kv.base import KVStorage
from engines.model.llama import CausalLM
from engines.transfer import HostTokens, pack_to_device, stream_event

PAD_TOKEN_ID = 0  # what a pad position feeds; its output is masked from every real token
MAX_FORWARD_TOKENS = 16384  # a larger step (a padded batch's prefill) runs as several forwards


@dataclass
class HostBatch:
    """A step's packed batch on the host, before it is copied to the device."""

    ids: list[int]  # [T] (pending tokens as their stand-ins)
    positions: list[np.ndarray]  # per chunk: RoPE positions
    slots: list[np.ndarray]  # per chunk: cache slots written
    query_lens: list[int]  # [N]
    seq_lens: list[int]  # [N] cache entries after this step
    key_start: list[int]  # [N]
    tables: list[list[int]]  # [N] block tables
    sample_rows: list[int]  # [S] rows whose logits are sampled
    sample_chunks: list[Chunk]
    params: list  # [S] SamplingParams
    steps: list[int]  # [S] output index being sampled

    @property
    def num_tokens(self) -> int:
        return len(self.ids)


@dataclass
class Batch:
    input_ids: torch.Tensor  # [T]
    positions: torch.Tensor  # [T]
    meta: AttentionMetadata
    sample_index: torch.Tensor  # [S] rows of the packed batch whose logits are sampled
    sample_chunks: list[Chunk]  # the chunk each sampled row belongs to
    sampling: SamplingBatch


def _chunk_tokens(chunk: Chunk) -> tuple[list[int], np.ndarray, int]:
    """Token ids (pending ones as their stand-ins), RoPE positions and the first cache index
    this chunk writes."""
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


def fill_pending(ids: torch.Tensor, previous: torch.Tensor | None) -> torch.Tensor:
    """Input ids with each pending stand-in (engines.core.sequence.pending_token) replaced, on
    the device, by the previous step's sampled token it stands for."""
    if previous is None or previous.numel() == 0:
        return ids
    return torch.where(ids >= 0, ids, previous[(-1 - ids).clamp(min=0)])


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


@dataclass
class Launched:
    """A step queued on the device: the chunks that sample, and their tokens on the way."""

    sampled: list[Chunk]
    tokens: HostTokens
    pending: list = field(default_factory=list)  # (sequence, index in token_ids, row), filled by the engine
    graph: bool = False  # replayed a CUDA graph (decode or mixed step) rather than launched eagerly
    # queued on the stream as the host starts launching the step, before its first copy or
    # kernel: with tokens.done, the step's time on the device (None on a CPU)
    started: torch.cuda.Event | None = None
    device_ns: int | None = None  # set when its tokens are resolved (engines.core.engine)
    stats: StepStats | None = None  # which get device_ns then


class ModelRunner:
    def __init__(self, model: CausalLM, storage: KVStorage, device: torch.device, graphs=None, mixed_graphs=None,
                 step_timing: bool = True):
        self.model = model
        self.step_timing = step_timing  # time each step on the device (Launched.started)
        self.storage = storage
        self.device = device
        self.block_size = storage.block_size
        self.graphs = graphs  # engines.core.cuda_graphs.DecodeGraphs, or None
        self.mixed_graphs = mixed_graphs  # engines.core.mixed_graphs.MixedGraphs, or None

    def launch(self, plan: StepPlan, previous: Launched | None = None) -> Launched:
        """Queue a plan's forward and sampling on the device and return at once; pending
        tokens in its inputs are taken from `previous`, the step before it, on the device."""
        prev = None if previous is None else previous.tokens.device_tokens
        timing = self.step_timing
        started = stream_event(self.device) if timing else None
        if self.graphs is not None and self.graphs.fits(plan.chunks):
            logits = self.graphs.run(plan.chunks, prev)
            tokens = sample(logits, _sampling_batch(plan.chunks, self.device))
            # every decode chunk samples
            return Launched(plan.chunks, HostTokens.start(tokens, timing), graph=True, started=started)
        host = None
        if self.mixed_graphs is not None and sum(c.num_entries for c in plan.chunks) <= self.mixed_graphs.max_tokens:
            host = self.host_batch(plan)
            if self.mixed_graphs.fits(host):
                logits = self.mixed_graphs.run(host, prev)
                tokens = sample(logits, SamplingBatch.build(host.params, host.steps, self.device))
                return Launched(host.sample_chunks, HostTokens.start(tokens, timing), graph=True, started=started)
        sampled, parts = [], []
        groups = split_chunks(plan.chunks, MAX_FORWARD_TOKENS)
        for group in groups:
            # a step the graphs could not take is still one group: its host batch is built already
            batch = self.build(StepPlan(chunks=group), prev, host if len(groups) == 1 else None)
            sampled += batch.sample_chunks
            parts.append(self.execute(batch))
        tokens = parts[0] if len(parts) == 1 else torch.cat(parts)
        return Launched(sampled, HostTokens.start(tokens, timing), started=started)

    def run(self, plan: StepPlan) -> tuple[list[Chunk], list[int]]:
        """Execute a plan and wait: (the chunks that sampled, their tokens on the host)."""
        launched = self.launch(plan)
        return launched.sampled, launched.tokens.wait()

    def host_batch(self, plan: StepPlan) -> HostBatch:
        """The packed batch of a plan, as host arrays."""
        ids: list[int] = []
        positions, slots = [], []
        host = HostBatch(ids, positions, slots, [], [], [], [], [], [], [], [])
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
            host.query_lens.append(n)
            host.seq_lens.append(start + n)
            host.key_start.append(seq.num_pad)
            host.tables.append(seq.block_table)
            if chunk.samples:
                host.sample_rows.append(len(ids) - 1)
                host.sample_chunks.append(chunk)
                host.params.append(seq.request.sampling)
                host.steps.append(len(seq.token_ids) - seq.num_prompt)
        return host

    def build(self, plan: StepPlan, previous_tokens: torch.Tensor | None = None, host: HostBatch | None = None) -> Batch:
        """host: the plan's host batch, when it is made already."""
        host = host or self.host_batch(plan)
        tables = host.tables
        width = max(len(t) for t in tables)
        table_array = np.zeros((len(tables), width), dtype=np.int32)
        for i, t in enumerate(tables):
            table_array[i, : len(t)] = t
        query_start = np.zeros(len(host.query_lens) + 1, dtype=np.int32)
        np.cumsum(host.query_lens, out=query_start[1:])
        dev = self.device
        # two copies to the device in all (one per dtype), none of them waiting for it
        input_ids, pos, slot_mapping, sample_index = pack_to_device(
            [np.asarray(host.ids), np.concatenate(host.positions), np.concatenate(host.slots),
             np.asarray(host.sample_rows)], np.int64, dev,
        )
        qstart, lens, kstart, flat_tables = pack_to_device(
            [query_start, np.asarray(host.seq_lens), np.asarray(host.key_start), table_array], np.int32, dev
        )
        meta = AttentionMetadata(
            query_start=qstart,
            seq_lens=lens,
            key_start=kstart,
            block_tables=flat_tables.view(len(tables), width),
            slot_mapping=slot_mapping,
            query_lens=host.query_lens,
            seq_lens_host=host.seq_lens,
            key_start_host=host.key_start,
            block_size=self.block_size,
        )
        if min(host.ids) < 0:
            input_ids = fill_pending(input_ids, previous_tokens)
        return Batch(
            input_ids=input_ids,
            positions=pos,
            meta=meta,
            sample_index=sample_index,
            sample_chunks=host.sample_chunks,
            sampling=SamplingBatch.build(host.params, host.steps, dev),
        )

    def execute(self, batch: Batch) -> torch.Tensor:
        """Forward, logits at the sampled rows, sample: the tokens [S], on the device."""
        hidden = self.model(batch.input_ids, batch.positions, self.storage.layers, batch.meta)
        if not batch.sample_chunks:
            return torch.empty(0, dtype=torch.long, device=self.device)
        logits = self.model.logits(hidden[batch.sample_index])
        return sample(logits, batch.sampling)
