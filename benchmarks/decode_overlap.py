"""GPU: would an 8B decode step gain from running the two halves of its batch at once?

At 256 running requests an 8B decode step runs its attention (memory-bound: every request's
K/V is read) and its matrix products (compute-bound at M = 256) one after the other, about
5.7 and 6.6 ms of a 13.4 ms step (README, "Where the time goes"). The two halves of a batch
are independent requests, so their forwards may run on two CUDA streams at once, one half's
attention beside the other's products (nano-batching, as in NanoFlow), at the price of
reading every weight twice. Before building that into the engines, this measures it.

Each variant is 32 decode layers of the Llama 8B shape on their own random bf16 weights and
K/V pages (RMS scaling, q/k/v, the engines' Triton paged attention over anchor-a-like
contexts, o, gate/up, SwiGLU, down; rotary and the K/V write left out), captured in a CUDA
graph and replayed, the variants alternating:

- serial: the whole batch, one stream (what the engines do now);
- two streams: the two halves (contexts dealt alternately, so both hold half the K/V), half
  B a half-layer behind half A, so that A's attention meets B's products and the reverse;
- one half alone: what half the batch costs by itself.

Half A computed beside half B must equal half A computed alone, bit for bit (a race in the
schedule would not); against the whole batch the outputs agree only roughly (bf16 products of
fewer rows may round differently). Prints the median ms per forward over the rounds.

    PYTHONPATH=. python benchmarks/decode_overlap.py [--batch 256] [--layers 32] [--rounds 5] [out.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys

import torch

from engines.attention.metadata import AttentionMetadata
from engines.attention.triton_paged import TritonPagedAttention

HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, PAGE = 4096, 32, 8, 128, 14336, 16


def metadata(seq_lens: list[int], first_page: list[int], device) -> AttentionMetadata:
    """Decode metadata (one query per sequence) over pages laid out from each sequence's
    first page on."""
    n = len(seq_lens)
    width = max(-(-s // PAGE) for s in seq_lens)
    tables = torch.zeros(n, width, dtype=torch.int32)
    for i, (s, p) in enumerate(zip(seq_lens, first_page)):
        pages = -(-s // PAGE)
        tables[i, :pages] = torch.arange(p, p + pages)
    return AttentionMetadata(
        query_start=torch.arange(n + 1, dtype=torch.int32, device=device),
        seq_lens=torch.tensor(seq_lens, dtype=torch.int32, device=device),
        key_start=torch.zeros(n, dtype=torch.int32, device=device), block_tables=tables.to(device),
        slot_mapping=torch.zeros(n, dtype=torch.long, device=device),  # unused: kv_written
        query_lens=[1] * n, seq_lens_host=seq_lens, key_start_host=[0] * n, block_size=PAGE,
    )


class Layers:
    def __init__(self, num_layers: int, num_pages: int, device):
        def weight(out_features, in_features):
            return torch.randn(out_features, in_features, dtype=torch.bfloat16, device=device) * in_features**-0.5

        self.layers = [
            dict(qkv=weight((HEADS + 2 * KV_HEADS) * HEAD_DIM, HIDDEN), o=weight(HIDDEN, HEADS * HEAD_DIM),
                 gate_up=weight(2 * FFN, HIDDEN), down=weight(HIDDEN, FFN),
                 k=torch.randn(num_pages, PAGE, KV_HEADS, HEAD_DIM, dtype=torch.bfloat16, device=device),
                 v=torch.randn(num_pages, PAGE, KV_HEADS, HEAD_DIM, dtype=torch.bfloat16, device=device))
            for _ in range(num_layers)
        ]
        self.attention = TritonPagedAttention(HEAD_DIM**-0.5, HEADS, KV_HEADS, HEAD_DIM)

    def first_part(self, layer: dict, x, meta, plan):
        """RMS scaling, q/k/v, attention: ends in the memory-bound part."""
        x = x * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5).to(x.dtype)
        qkv = x @ layer["qkv"].t()
        q = qkv[:, : HEADS * HEAD_DIM].view(-1, HEADS, HEAD_DIM)
        kv = qkv[:, HEADS * HEAD_DIM : (HEADS + KV_HEADS) * HEAD_DIM].view(-1, KV_HEADS, HEAD_DIM)
        out = self.attention(q, kv, kv, layer["k"], layer["v"], meta, plan, kv_written=True)
        return x, out.view(-1, HEADS * HEAD_DIM)

    @staticmethod
    def second_part(layer: dict, x, attn):
        """o, gate/up, SwiGLU, down: the compute-bound part."""
        x = x + attn @ layer["o"].t()
        gate, up = (x @ layer["gate_up"].t()).chunk(2, dim=-1)
        return x + (torch.nn.functional.silu(gate) * up) @ layer["down"].t()

    def forward(self, x, meta, plan):
        for layer in self.layers:
            x, attn = self.first_part(layer, x, meta, plan)
            x = self.second_part(layer, x, attn)
        return x

    def forward_two(self, xa, xb, halves, side: torch.cuda.Stream):
        """Half B a half-layer behind half A, each on its own stream."""
        (meta_a, plan_a), (meta_b, plan_b) = halves
        main = torch.cuda.current_stream()
        side.wait_stream(main)
        xa, attn_a = self.first_part(self.layers[0], xa, meta_a, plan_a)
        for i, layer in enumerate(self.layers):
            with torch.cuda.stream(side):
                xb, attn_b = self.first_part(layer, xb, meta_b, plan_b)
            xa = self.second_part(layer, xa, attn_a)
            if i + 1 < len(self.layers):
                xa, attn_a = self.first_part(self.layers[i + 1], xa, meta_a, plan_a)
            with torch.cuda.stream(side):
                xb = self.second_part(layer, xb, attn_b)
        main.wait_stream(side)
        return xa, xb


def graph(fn) -> tuple[torch.cuda.CUDAGraph, object]:
    warm = torch.cuda.Stream()
    warm.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(warm):
        fn()
    torch.cuda.current_stream().wait_stream(warm)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = fn()
    return g, out


def time_ms(g: torch.cuda.CUDAGraph, replays: int) -> float:
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(replays):
        g.replay()
    end.record()
    end.synchronize()
    return start.elapsed_time(end) / replays


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", nargs="?", help="write the rows as JSON here")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--layers", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--replays", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("needs a CUDA GPU")
        return 2
    device = torch.device("cuda")
    rng = random.Random(0)
    contexts = sorted((rng.randint(64, 1024) + rng.randint(0, 511) for _ in range(args.batch)), reverse=True)
    first_page, pages = [], 0
    for s in contexts:
        first_page.append(pages)
        pages += -(-s // PAGE)
    model = Layers(args.layers, pages, device)
    full = metadata(contexts, first_page, device)
    halves = []
    for part in (slice(0, None, 2), slice(1, None, 2)):  # dealt alternately: equal K/V
        meta = metadata(contexts[part], first_page[part], device)
        halves.append((meta, model.attention.prepare(meta)))
    x = torch.randn(args.batch, HIDDEN, dtype=torch.bfloat16, device=device)
    xa, xb = x[0::2].contiguous(), x[1::2].contiguous()
    side = torch.cuda.Stream()

    plan = model.attention.prepare(full)  # tile lists on the device: before any capture
    variants = {
        "serial": graph(lambda: model.forward(x, full, plan)),
        "two streams": graph(lambda: model.forward_two(xa, xb, halves, side)),
        "one half alone": graph(lambda: model.forward(xa, *halves[0])),
    }
    for g, _ in variants.values():
        g.replay()
    torch.cuda.synchronize()
    # half A on its own stream beside B must give exactly what it gives alone (same rows, same
    # kernels): anything else is a race in the two-stream schedule
    two_a, two_b = variants["two streams"][1]
    ok = bool(torch.isfinite(two_a).all()) and torch.equal(two_a, variants["one half alone"][1])
    # against the whole batch only roughly: products of fewer rows may round differently, and
    # 32 layers of random weights amplify that
    serial_out = variants["serial"][1]
    expected = torch.empty_like(serial_out)
    expected[0::2], expected[1::2] = two_a, two_b
    diff = (serial_out.float() - expected.float()).abs().max().item() / max(serial_out.float().abs().max().item(), 1e-9)

    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (g, _) in variants.items():
            times[name].append(time_ms(g, args.replays))
    kv_gb = sum(contexts) * 2 * KV_HEADS * HEAD_DIM * 2 * args.layers / 1e9
    base = statistics.median(times["serial"])
    rows = []
    print(f"8B decode layers x{args.layers}, batch {args.batch}, K/V read {kv_gb:.1f} GB a forward; "
          f"half A beside B equals half A alone: {ok}; two streams vs serial: max difference {diff:.2e} of the largest value")
    for name, values in times.items():
        median = statistics.median(values)
        rows.append(dict(variant=name, ms_median=round(median, 3), ms_min=round(min(values), 3),
                         vs_serial=round(median / base, 4), batch=args.batch, layers=args.layers))
        print(f"  {name:15s} {median:8.3f} ms (min {min(values):.3f})  {median / base:6.3f}x serial")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(dict(rows=rows, ok=ok, max_rel_diff=diff, kv_gb=kv_gb), f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
