"""Host-side time of a decode step with ~200-256 running requests (anchor-a lengths), without a
model: the real paged scheduler, KV manager, apply and the CUDA-graph runner's input filling
(its forward replaced by a zero tensor). On a GPU this time adds to every decode step, since
without async scheduling the step loop does not overlap host and device work.

    PYTHONPATH=. python benchmarks/host_overhead.py [prof]
"""
import cProfile
import pstats
import random
import sys
import time

import torch

from engines.core.cuda_graphs import DecodeGraphs
from engines.request import Request
from tests.engines.fakes import fake_engine

e = fake_engine("paged", max_batch=256, token_budget=8192, block_size=16, num_blocks=12000, max_model_len=1536)
runner = e.runner
class _Attn:
    def decode_plan(self, b, device, order=None):
        return None
class _Model:
    attention = _Attn()
graphs = DecodeGraphs(_Model(), runner.storage, 256, 96, torch.device("cpu"), capture=False)
V = 1000
graphs._forward = lambda b, meta, plan: torch.zeros(b, V)
runner.graphs = graphs
runner.execute = lambda batch: torch.full((len(batch.sample_chunks),), 3)  # prefill: no checks, no model
rng = random.Random(0)
for i in range(256):
    e.add_request(Request(f"r{i}", tuple(rng.randrange(3, 999) for _ in range(rng.randint(64, 1024))), rng.randint(16, 512)))
while True:
    o = e.step()
    if o.stats.prefill_tokens == 0:
        break
n = 100
t = time.perf_counter()
if len(sys.argv) > 1:
    pr = cProfile.Profile(); pr.enable()
for _ in range(n):
    e.step()
dt = (time.perf_counter() - t) / n
if len(sys.argv) > 1:
    pr.disable(); pstats.Stats(pr).sort_stats("tottime").print_stats(14)
print(f"host time per decode step: {dt*1e3:.2f} ms at {len(e.policy.running)} running")
