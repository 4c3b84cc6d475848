"""A split-K matrix product for few rows: `linear(x, weight, bias, config=...)` with F.linear's
semantics, for decode steps where M (the running requests) is small and the product is a
read of the weight.

Why: at M <= 64 a decode step's products are memory-bound, and with one program per output
tile a narrow layer (N = 4096..6144 on an 8B shape) has too few programs in flight to keep
the H200's memory busy: cuBLAS reads the 8B shape's q/k/v and o weights at 1.7-2.3 TB/s of
4.2 (examples/h200-anchor-a/decode-matmul.json). Splitting K into SPLIT_K ranges multiplies
the programs reading the weight; each writes a float32 partial [M, N], and a second kernel
sums the partials in split order (deterministic), adds the bias and rounds once to x's dtype.
The partials are SPLIT_K * M * N * 4 bytes, small beside the weight at these M.

Rows past M and columns past N wrap onto valid ones, as in engines.model.invariant_matmul:
loads stay unmasked along M and N, and their results are never stored.

The forward calls it only through a table of measured wins (engine option matmul_table,
engines.model.matmul_table), which `benchmarks/decode_matmul.py --splitk --table=FILE` writes
after timing it against cuBLAS on the GPU at hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from engines.model.invariant_matmul import flatten_operands, interpreting, k_tile_dot


@dataclass(frozen=True)
class SplitKConfig:
    """One launch configuration: tile sizes, K splits, Triton's warps and pipeline stages."""

    block_m: int
    block_n: int
    block_k: int
    split_k: int
    num_warps: int = 4
    num_stages: int = 3

    def __post_init__(self):
        if min(self.block_m, self.block_n, self.block_k) < 16:
            raise ValueError(f"{self}: tl.dot needs tiles of at least 16 in every dimension")
        if self.split_k < 1:
            raise ValueError(f"{self}: split_k must be >= 1")

    def k_per_split(self, k: int) -> int:
        """K entries each split covers: a whole number of K tiles, the last split shorter."""
        return triton.cdiv(triton.cdiv(k, self.split_k), self.block_k) * self.block_k


@triton.jit(do_not_specialize=["M"])
def _partial_kernel(
    x_ptr, w_ptr, part_ptr,
    M, N, K, k_per_split,
    stride_xm, stride_xk, stride_wn, stride_wk,
    EVEN_K: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
):
    pid_n = tl.program_id(0)
    split = tl.program_id(1)
    pid_m = tl.program_id(2)
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    k_start = split * k_per_split
    k_end = tl.minimum(k_start + k_per_split, K)
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + offs_m[:, None].to(tl.int64) * stride_xm + (k_start + offs_k)[None, :] * stride_xk
    w_ptrs = w_ptr + offs_n[None, :].to(tl.int64) * stride_wn + (k_start + offs_k)[:, None] * stride_wk

    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(k_start, k_end, BLOCK_K):
        # EVEN_K: every K tile is whole, and the splits start and end on tile boundaries
        acc = k_tile_dot(x_ptrs, w_ptrs, acc, offs_k, k_end - k, EVEN_K, IEEE, UPCAST)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    out = part_ptr + split.to(tl.int64) * M * N + rows[:, None].to(tl.int64) * N + cols[None, :]
    tl.store(out, acc, mask=(rows[:, None] < M) & (cols[None, :] < N))


@triton.jit
def _reduce_kernel(part_ptr, b_ptr, out_ptr, MN, N,
                   SPLIT_K: tl.constexpr, HAS_BIAS: tl.constexpr, BLOCK: tl.constexpr):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < MN
    acc = tl.load(part_ptr + offs, mask=mask, other=0.0)
    for s in tl.static_range(1, SPLIT_K):  # split order: the same sum every call
        acc += tl.load(part_ptr + s * MN + offs, mask=mask, other=0.0)
    if HAS_BIAS:
        acc += tl.load(b_ptr + offs % N, mask=mask, other=0.0).to(tl.float32)
    tl.store(out_ptr + offs, acc.to(out_ptr.dtype.element_ty), mask=mask)


def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, *,
           config: SplitKConfig) -> torch.Tensor:
    """x [..., K] @ weight[N, K].T (+ bias [N]) -> [..., N] in x's dtype, K split config.split_k
    ways (float32 partials, summed in a fixed order, rounded once)."""
    x2, early = flatten_operands(x, weight, bias)
    if early is not None:
        return early
    m, k = x2.shape
    n = weight.shape[0]
    per_split = config.k_per_split(k)
    splits = triton.cdiv(k, per_split)  # a K shorter than split_k tiles runs fewer splits
    partials = torch.empty(splits, m, n, dtype=torch.float32, device=x.device)
    grid = (triton.cdiv(n, config.block_n), splits, triton.cdiv(m, config.block_m))
    _partial_kernel[grid](
        x2, weight, partials, m, n, k, per_split,
        x2.stride(0), x2.stride(1), weight.stride(0), weight.stride(1),
        EVEN_K=k % config.block_k == 0, IEEE=x.dtype == torch.float32,
        UPCAST=x.dtype == torch.bfloat16 and interpreting(),
        BLOCK_M=config.block_m, BLOCK_N=config.block_n, BLOCK_K=config.block_k,
        num_warps=config.num_warps, num_stages=config.num_stages,
    )
    out = torch.empty(m, n, dtype=x.dtype, device=x.device)
    block = 1024
    _reduce_kernel[(triton.cdiv(m * n, block),)](
        partials, bias.contiguous() if bias is not None else partials, out, m * n, n,
        SPLIT_K=splits, HAS_BIAS=bias is not None, BLOCK=block,
    )
    return out.reshape(*x.shape[:-1], n)
