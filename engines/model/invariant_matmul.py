"""A batch-invariant matrix product: `linear(x, weight, bias)` with F.linear's semantics whose
result for a row of x depends only on that row and the weight, bitwise, whatever else is in
the batch and however many rows there are.

Why cuBLAS is not: it picks a kernel (tile shape, split-K, stream-K) by the problem size, M
included, and each choice sums a dot product's K terms in another order. In bf16 that moves
the last bit of a logit, greedy decoding follows the bit, and one request's tokens differ
between a batch of 3 and a batch of 200. Here the launch configuration (tile sizes, warps,
pipeline stages, grouping) is a function of N, K, the dtype and the device only; there is no
split-K; every output tile runs its K loop in one fixed order, so a row's K terms are summed
the same way in every batch. M only decides how many tiles run (the kernel is compiled with M
unspecialised: one binary for every M), and a row's position inside its tile does not enter
the arithmetic (an MMA computes each output element from its own row and column).

Precision: products accumulate in float32 and round once to x's dtype. float32 inputs use
input_precision="ieee" (no TF32), so float32 stays float32 (the CPU equality tests need it).
A bias is added to the float32 accumulator before that one rounding (cuBLAS's bias epilogue
does the same; an unfused `x @ w.T + b` would round twice).

Cost (one H200, bf16, 2026-11-28, benchmarks/invariant_matmul.py): all matrix products of one
forward take 3.08x / 1.88x / 1.71x / 1.37x cuBLAS's time on the Llama 1B shape at M = 1 / 64 /
256 / 8192 rows, 2.77x / 1.64x / 1.50x / 1.31x on the 8B shape. Small M is slowest: with the
tile fixed by N alone a narrow layer (N = 2048..6144) runs on only N / BLOCK_N programs, fewer
than the GPU's SMs, where cuBLAS would split K to fill them. End to end, `paged` on anchor-a
(llama-1b) ran at 22,369 output tok/s with it and 35,056 without.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, replace

import torch
import triton
import triton.language as tl

SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


@dataclass(frozen=True)
class MatmulConfig:
    """One launch configuration. Anything that changes a row's result lives here, and none
    of it may depend on M."""

    block_m: int
    block_n: int
    block_k: int
    num_warps: int
    num_stages: int
    group_m: int = 8

    def smem_bytes(self, element_size: int) -> int:
        """Shared memory the pipelined K loop needs: one x tile and one weight tile a stage."""
        return self.num_stages * (self.block_m + self.block_n) * self.block_k * element_size


# Hopper (H100/H200), 16-bit. A wide tile is what makes large M fast (fewer bytes moved per
# FLOP); at small M only N / BLOCK_N programs run, so narrow layers take a narrower tile to
# keep more SMs reading the weight.
WIDE = MatmulConfig(block_m=128, block_n=256, block_k=64, num_warps=8, num_stages=3)
NARROW = MatmulConfig(block_m=128, block_n=128, block_k=64, num_warps=8, num_stages=4)
WIDE_MIN_N = 16384  # gate_up and the LM head of 1B..8B models (>= 64 programs at 256 wide)
# float32 goes through FMA units (ieee): a small tile keeps the accumulator in registers
FLOAT32 = MatmulConfig(block_m=64, block_n=64, block_k=32, num_warps=4, num_stages=3)
# Triton's CPU interpreter (tests) pays per operation, not per FLOP: the fewer tiles the better
INTERPRETER = MatmulConfig(block_m=64, block_n=128, block_k=128, num_warps=4, num_stages=2)


@functools.lru_cache(maxsize=None)
def config_for(n: int, k: int, dtype: torch.dtype, device: torch.device) -> MatmulConfig:
    """The launch configuration for a weight of shape [n, k]: never a function of M."""
    del k  # every K runs the same loop; kept in the signature as the key the table may use
    if device.type != "cuda":
        return INTERPRETER
    if dtype == torch.float32:
        config = FLOAT32
    else:
        config = WIDE if n >= WIDE_MIN_N else NARROW
    limit = getattr(torch.cuda.get_device_properties(device), "shared_memory_per_block_optin", None)
    # smaller GPUs (consumer parts: ~100 KB a block) get fewer pipeline stages, not another
    # tile: the stages only change how far loads run ahead, not the sums
    while limit and config.num_stages > 2 and config.smem_bytes(dtype.itemsize) > limit:
        config = replace(config, num_stages=config.num_stages - 1)
    return config


def interpreting() -> bool:
    """Whether Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1 at import)."""
    knobs = getattr(triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@triton.jit(do_not_specialize=["M"])
def _linear_kernel(
    x_ptr, w_ptr, b_ptr, out_ptr,
    M, N, K,
    stride_xm, stride_xk, stride_wn, stride_wk, stride_om,
    HAS_BIAS: tl.constexpr, EVEN_K: tl.constexpr, IEEE: tl.constexpr, UPCAST: tl.constexpr,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr,
):
    # Grouped tile order: GROUP_M row tiles share each weight tile while it is in L2. It
    # only decides which program computes which tile, never how a tile is computed.
    pid = tl.program_id(0)
    num_pid_m = tl.cdiv(M, BLOCK_M)
    num_pid_n = tl.cdiv(N, BLOCK_N)
    group_size = GROUP_M * num_pid_n
    first_m = (pid // group_size) * GROUP_M
    rows_in_group = min(num_pid_m - first_m, GROUP_M)
    pid_m = first_m + (pid % group_size) % rows_in_group
    pid_n = (pid % group_size) // rows_in_group

    # Rows past M and columns past N wrap onto valid ones instead of being masked, so that
    # loads stay unmasked and vectorised; their results are never stored, and a valid row's
    # result does not depend on what its neighbours in the tile hold. (No contiguity hints on
    # these offsets: they are not contiguous where they wrap, and K is the contiguous axis.)
    offs_m = (pid_m * BLOCK_M + tl.arange(0, BLOCK_M)) % M
    offs_n = (pid_n * BLOCK_N + tl.arange(0, BLOCK_N)) % N
    offs_k = tl.arange(0, BLOCK_K)
    x_ptrs = x_ptr + offs_m[:, None].to(tl.int64) * stride_xm + offs_k[None, :] * stride_xk
    w_ptrs = w_ptr + offs_n[None, :].to(tl.int64) * stride_wn + offs_k[:, None] * stride_wk

    # The one reduction order: K in ascending BLOCK_K chunks, one float32 accumulator.
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, tl.cdiv(K, BLOCK_K)):
        if EVEN_K:
            a = tl.load(x_ptrs)
            b = tl.load(w_ptrs)
        else:
            k_left = K - k * BLOCK_K
            a = tl.load(x_ptrs, mask=offs_k[None, :] < k_left, other=0.0)
            b = tl.load(w_ptrs, mask=offs_k[:, None] < k_left, other=0.0)
        if UPCAST:  # Triton's CPU interpreter multiplies bfloat16 as raw integers
            a = a.to(tl.float32)
            b = b.to(tl.float32)
        if IEEE or UPCAST:
            acc = tl.dot(a, b, acc, input_precision="ieee")
        else:
            acc = tl.dot(a, b, acc)
        x_ptrs += BLOCK_K * stride_xk
        w_ptrs += BLOCK_K * stride_wk

    rows = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    cols = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=cols < N, other=0.0).to(tl.float32)[None, :]
    out_ptrs = out_ptr + rows[:, None].to(tl.int64) * stride_om + cols[None, :]
    tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=(rows[:, None] < M) & (cols[None, :] < N))


def _check(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    def shapes() -> str:
        return f"x {tuple(x.shape)}, weight {tuple(weight.shape)}" + (
            f", bias {tuple(bias.shape)}" if bias is not None else ""
        )

    if weight.dim() != 2:
        raise ValueError(f"linear: weight must be 2-D [N, K]; got {shapes()}")
    if x.dim() < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: x must be [..., K] with K = weight.shape[1] = {weight.shape[1]}; got {shapes()}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias must be [N] with N = weight.shape[0] = {weight.shape[0]}; got {shapes()}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"linear: dtype {x.dtype} not supported; supported: {', '.join(map(str, SUPPORTED_DTYPES))}")
    tensors = {"x": x, "weight": weight, "bias": bias} if bias is not None else {"x": x, "weight": weight}
    if any(t.dtype != x.dtype for t in tensors.values()):
        raise TypeError("linear: x, weight and bias must share one dtype; got "
                        + ", ".join(f"{name} {t.dtype}" for name, t in tensors.items()))
    if any(t.device != x.device for t in tensors.values()):
        raise ValueError("linear: x, weight and bias must be on one device; got "
                         + ", ".join(f"{name} {t.device}" for name, t in tensors.items()))


def linear(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    config: MatmulConfig | None = None,
) -> torch.Tensor:
    """x [..., K] @ weight[N, K].T (+ bias [N]) -> [..., N] in x's dtype, batch-invariant.

    config: a launch configuration to use instead of config_for(...) (benchmarks and tests;
    keep it fixed across calls, or rows stop agreeing between calls)."""
    _check(x, weight, bias)
    n, k = weight.shape
    lead = x.shape[:-1]
    m = lead.numel()
    if m == 0 or n == 0:
        return x.new_empty(*lead, n)
    if k == 0:  # an empty sum: the bias, or zeros
        return bias.expand(*lead, n).clone() if bias is not None else x.new_zeros(*lead, n)
    x2 = x.reshape(m, k)
    if x2.stride(-1) != 1:
        x2 = x2.contiguous()
    if bias is not None:
        bias = bias.contiguous()
    cfg = config or config_for(n, k, x.dtype, x.device)
    out = torch.empty(m, n, dtype=x.dtype, device=x.device)
    grid = (triton.cdiv(m, cfg.block_m) * triton.cdiv(n, cfg.block_n),)
    _linear_kernel[grid](
        x2, weight, bias if bias is not None else weight, out,
        m, n, k,
        x2.stride(0), x2.stride(1), weight.stride(0), weight.stride(1), out.stride(0),
        HAS_BIAS=bias is not None, EVEN_K=k % cfg.block_k == 0, IEEE=x.dtype == torch.float32,
        UPCAST=x.dtype == torch.bfloat16 and interpreting(),
        BLOCK_M=cfg.block_m, BLOCK_N=cfg.block_n, BLOCK_K=cfg.block_k, GROUP_M=cfg.group_m,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )
    return out.reshape(*lead, n)
