"""Steps that mix prompt chunks with decodes, replayed from CUDA graphs per token-count bucket.

Continuous batching refills a freed slot in a step that carries the new prompt (or a chunk of
it) beside every running request's decode token. Run eagerly, such a step launches a few
hundred kernels from Python; on a small model that takes longer than the GPU needs to run
them, and the refills leave the GPU idle. Here a step of up to `max_tokens` tokens runs in the
smallest captured bucket (multiples of 64 tokens) that holds it:

- tokens past the step's own feed token 0 at position 0 and write only the KV cache's scratch
  block; no attention tile covers them, and every row of the forward is independent of the
  others (matrix products, norms), so they change nothing of the real rows;
- the attention's tile lists are fixed-length device buffers (engines.attention.triton_paged,
  static plans): the step's tiles first, then -1, which the kernel skips;
- sequence arrays hold max_batch entries, the ones past the step's sequences empty.

All inputs go to the device in two copies (one int64, one int32 buffer), neither waiting for
it. The graph ends at the final norm; the LM head runs after it on the sampled rows alone.
"""

from __future__ import annotations

import numpy as np
import torch

from engines.attention.metadata import AttentionMetadata
from engines.core.cuda_graphs import capture, fill_block_tables, load_previous
from engines.core.model_runner import PAD_TOKEN_ID, HostBatch, fill_pending
from engines.transfer import copy_into

BUCKET = 64  # tokens: the padding a step pays at most (less than one bucket)


def token_buckets(max_tokens: int) -> list[int]:
    return sorted(set(range(BUCKET, max_tokens, BUCKET)) | {max_tokens})


class MixedGraphs:
    """capture=False runs the same static buffers eagerly: the CPU tests check with it that
    the buffers are filled right (padding included) without a GPU."""

    def __init__(self, model, storage, max_batch: int, max_blocks: int, max_tokens: int, device: torch.device,
                 capture: bool = True):
        self.model = model
        self.storage = storage
        self.bs = storage.block_size
        self.scratch = storage.scratch_block
        self.max_batch = max_batch
        self.max_blocks = max_blocks
        self.max_tokens = max_tokens
        self.buckets = token_buckets(max_tokens)
        self.device = device
        attention = model.attention
        T, S = max_tokens, max_batch
        self.max_tiles = attention.max_prefill_tiles(T, S)
        # int64: input ids, positions, slots [T each], sampled rows [S]
        self.longs = torch.zeros(3 * T + S, dtype=torch.long, device=device)
        self.input_ids, self.positions, self.slot_mapping = self.longs[: 3 * T].view(3, T)
        self.sample_index = self.longs[3 * T :]
        # int32: query starts [S+1], seq lens, key starts, decode tiles (sequence, query) [S
        # each], prefill tiles (sequence, first query) [max_tiles each], block tables [S, width]
        sizes = [S + 1, S, S, S, S, self.max_tiles, self.max_tiles, S * max_blocks]
        # each part on a 16-byte boundary, as engines.transfer.pack_to_device lays them out
        self._room = [-(-n // 4) * 4 for n in sizes]
        self.ints = torch.zeros(sum(self._room), dtype=torch.int32, device=device)
        parts = [part[:n] for part, n in zip(self.ints.split(self._room), sizes)]
        self.query_start, self.seq_lens, self.key_start = parts[:3]
        self.tile_buffers = parts[3:7]  # decode seq, decode qstart, prefill seq, prefill qstart
        self.block_tables = parts[7].view(S, max_blocks)
        self._sizes = sizes
        self.previous = torch.zeros(S, dtype=torch.long, device=device)
        # what a capture runs on: every token on the scratch block, no sequence, no tile
        self.slot_mapping.fill_(self.scratch * self.bs)
        self.seq_lens.fill_(1)
        self.block_tables.fill_(self.scratch)
        for buffer in self.tile_buffers:
            buffer.fill_(-1)
        self.graphs: dict[int, tuple] = {}  # bucket -> (graph, hidden states, meta, plan)
        self.capture = capture
        self.replays = 0  # steps run through these buffers (tests check the path is taken)
        if capture:
            self._capture()

    def _meta(self, tokens: int) -> AttentionMetadata:
        S = self.max_batch
        return AttentionMetadata(
            query_start=self.query_start, seq_lens=self.seq_lens, key_start=self.key_start,
            block_tables=self.block_tables, slot_mapping=self.slot_mapping[:tokens],
            query_lens=[0] * S, seq_lens_host=[1] * S, key_start_host=[0] * S, block_size=self.bs,
        )

    def _plan(self, tokens: int):
        tiles = self.model.attention.max_prefill_tiles(tokens, self.max_batch)
        decode_seq, decode_qstart, prefill_seq, prefill_qstart = self.tile_buffers
        return self.model.attention.static_plan(decode_seq, decode_qstart, prefill_seq[:tiles], prefill_qstart[:tiles])

    def _forward(self, tokens: int, meta, plan):
        ids = fill_pending(self.input_ids[:tokens], self.previous)
        return self.model(ids, self.positions[:tokens], self.storage.layers, meta, plan)

    def _capture(self) -> None:
        pool = torch.cuda.graph_pool_handle()
        for tokens in reversed(self.buckets):  # largest first: the smaller ones reuse its memory
            meta, plan = self._meta(tokens), self._plan(tokens)
            graph, hidden = capture(lambda: self._forward(tokens, meta, plan), self.device, pool)  # noqa: B023 (called at once)
            self.graphs[tokens] = (graph, hidden, meta, plan)
        torch.cuda.synchronize(self.device)

    def fits(self, host: HostBatch) -> bool:
        return (
            host.num_tokens <= self.max_tokens
            and len(host.query_lens) <= self.max_batch
            and max(map(len, host.tables)) <= self.max_blocks
        )

    def run(self, host: HostBatch, previous: torch.Tensor | None = None) -> torch.Tensor:
        """The step's logits at its sampled rows [len(host.sample_rows), vocab]."""
        n_tok, n_seq, n_sample = host.num_tokens, len(host.query_lens), len(host.sample_rows)
        tokens = next(b for b in self.buckets if b >= n_tok)
        T, S = self.max_tokens, self.max_batch
        longs = np.zeros(3 * T + S, dtype=np.int64)  # padding tokens: position 0
        longs[:n_tok] = host.ids
        longs[n_tok:T] = PAD_TOKEN_ID
        longs[T : T + n_tok] = np.concatenate(host.positions)
        longs[2 * T : 2 * T + n_tok] = np.concatenate(host.slots)
        longs[2 * T + n_tok : 3 * T] = self.scratch * self.bs
        longs[3 * T : 3 * T + n_sample] = host.sample_rows
        ints = np.zeros(sum(self._room), dtype=np.int32)
        parts = np.split(ints, np.cumsum(self._room)[:-1])
        qs, lens, kstart, dseq, dq, pseq, pq, tables = (part[:n] for part, n in zip(parts, self._sizes))
        np.cumsum(host.query_lens, out=qs[1 : n_seq + 1])
        qs[n_seq + 1 :] = n_tok  # sequences past the step's: empty
        lens[:n_seq] = host.seq_lens
        lens[n_seq:] = 1
        kstart[:n_seq] = host.key_start
        for buffer, values in zip((dseq, dq, pseq, pq), self.model.attention.static_tiles(host.query_lens, host.seq_lens)):
            buffer[: values.size] = values
            buffer[values.size :] = -1
        tables[:] = self.scratch
        fill_block_tables(tables.reshape(S, self.max_blocks), host.tables)
        copy_into(self.longs, longs)
        copy_into(self.ints, ints)
        load_previous(self.previous, previous)
        self.replays += 1
        if self.capture:
            graph, hidden, _meta, _plan = self.graphs[tokens]
            graph.replay()
        else:
            hidden = self._forward(tokens, self._meta(tokens), self._plan(tokens))
        # outside the graph: the LM head for the sampled rows only, not max_batch of them
        return self.model.logits(hidden[self.sample_index[:n_sample]])
