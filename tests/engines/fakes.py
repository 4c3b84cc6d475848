"""A model-free runner for testing the policies and KV managers through the real step loop.

It builds the real packed batch (slot mapping, block tables) and checks it, then "samples"
a token that is a pure function of (request, output index), so a test knows every request's
exact expected output even across preemptions and recomputes.
"""

from __future__ import annotations

import zlib

import torch

from engines.core.build import LADDER
from engines.core.engine import LLMEngine
from engines.core.model_runner import ModelRunner
from engines.core.options import ResolvedOptions
from engines.kv.base import KVStorage

VOCAB = 1000


def fake_token(request_id: str, index: int) -> int:
    return 3 + zlib.crc32(f"{request_id}:{index}".encode()) % (VOCAB - 3)


class FakeRunner(ModelRunner):
    def __init__(self, options: ResolvedOptions):
        storage = KVStorage(1, options.num_blocks, options.block_size, 1, 1, torch.float32, torch.device("cpu"))
        super().__init__(model=None, storage=storage, device=torch.device("cpu"), step_timing=options.step_timing)
        self.options = options
        self.max_tokens_seen = 0

    def execute(self, batch) -> torch.Tensor:
        meta = batch.meta
        slots = meta.slot_mapping.tolist()
        assert len(slots) == len(set(slots)), "two tokens of one step write the same KV slot"
        assert all(0 <= s < self.options.kv_tokens for s in slots), "slot outside the cache"
        assert batch.input_ids.shape[0] == len(slots) == sum(meta.query_lens)
        assert all(0 <= t < VOCAB for t in batch.input_ids.tolist())
        self.max_tokens_seen = max(self.max_tokens_seen, len(slots))
        return torch.tensor([fake_token(c.seq.id, c.seq.num_output) for c in batch.sample_chunks], dtype=torch.long)


def fake_engine(name: str, **kw) -> LLMEngine:
    defaults = dict(
        max_batch=4, token_budget=16, block_size=4, num_blocks=64, max_model_len=64,
        prefix_caching=False, attention="reference", cuda_graphs=False, kv_bytes_per_token=1,
    )
    options = ResolvedOptions(**{**defaults, **kw})
    policy_cls, make_kv = LADDER[name]
    runner = FakeRunner(options)
    info = {"name": name, "kind": "in-repo", "options": options.describe(), "model": None}
    return LLMEngine(name, policy_cls(options, make_kv(options)), runner, VOCAB, info)
