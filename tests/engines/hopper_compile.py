"""Compile every Triton kernel of the GPU path for an H100/H200 (sm_90), on any machine:
Triton's wheel carries ptxas. Run as `python -m tests.engines.hopper_compile` in a process
without TRITON_INTERPRET (under the interpreter @triton.jit makes no compilable kernels);
prints one JSON object: case -> {ok, error, shared, wgmma}. tests/engines/test_hopper_compile.py
runs it and checks each case."""

from __future__ import annotations

import json
import sys

SHARED_MEMORY = 227 * 1024  # an H100/H200 SM's shared memory a block may opt into
INT32_POINTERS = ("block_tables_ptr", "seq_lens_ptr", "query_start_ptr", "key_start_ptr", "tile_seq_ptr",
                  "tile_qstart_ptr")


def _cases() -> dict:
    """case -> (kernel, constexprs, pointer types, fp32 scalars, launch options), with the
    launch configurations the engines use."""
    from engines.attention.triton_paged import DECODE, PREFILL, _paged_attention_kernel
    from engines.model import fused, invariant_matmul

    cases = {}
    for name, config in (("wide", invariant_matmul.WIDE), ("narrow", invariant_matmul.NARROW),
                         ("float32", invariant_matmul.FLOAT32)):
        fp32 = config is invariant_matmul.FLOAT32
        cases[f"invariant_matmul-{name}"] = (
            invariant_matmul._linear_kernel,
            dict(HAS_BIAS=False, EVEN_K=True, IEEE=fp32, UPCAST=False, BLOCK_M=config.block_m,
                 BLOCK_N=config.block_n, BLOCK_K=config.block_k, GROUP_M=config.group_m),
            {p: "*fp32" for p in ("x_ptr", "w_ptr", "b_ptr", "out_ptr")} if fp32 else {}, (),
            dict(num_warps=config.num_warps, num_stages=config.num_stages),
        )
    for head_dim in (64, 128):
        for phase, config, block_q in (("decode", DECODE, 4), ("prefill", PREFILL, 16)):
            cases[f"paged_attention-{phase}-head_dim={head_dim}"] = (
                _paged_attention_kernel,
                dict(BLOCK_SIZE=16, GROUP=4, BLOCK_Q=block_q, BLOCK_N=config.block_n, HEAD_DIM=head_dim,
                     PRECISION="tf32"),
                {p: "*i32" for p in INT32_POINTERS}, ("scale_log2",), config.launch_options(),
            )
    cases["add_rms_norm"] = (fused._add_rms_norm_kernel, dict(HAS_RES=True, BLOCK=4096), {}, ("eps",), {})
    cases["rotary_store"] = (fused._rotary_store_kernel, dict(HALF=64, BLOCK_H=32, BLOCK_KV=8),
                             {"pos_ptr": "*i64", "slot_ptr": "*i64"}, (), {})
    cases["silu_mul"] = (fused._silu_mul_kernel, dict(BLOCK=1024), {}, (), {})
    return cases


CASES = ["invariant_matmul-wide", "invariant_matmul-narrow", "invariant_matmul-float32",
         "paged_attention-decode-head_dim=64", "paged_attention-prefill-head_dim=64",
         "paged_attention-decode-head_dim=128", "paged_attention-prefill-head_dim=128",
         "add_rms_norm", "rotary_store", "silu_mul"]


def compile_for_hopper(kernel, constexprs: dict, pointers: dict, floats, launch: dict):
    """Parameters named *_ptr are pointers (bf16 unless `pointers` says otherwise), those
    in `floats` fp32 scalars, the rest int32."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = pointers.get(name, "*bf16")
        else:
            signature[name] = "fp32" if name in floats else "i32"
    source = ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    return triton.compile(source, target=GPUTarget("cuda", 90, 32), options=launch)


def main() -> int:
    cases = _cases()
    assert sorted(cases) == sorted(CASES), "CASES lists every case"
    results = {}
    for name, (kernel, constexprs, pointers, floats, launch) in cases.items():
        try:
            compiled = compile_for_hopper(kernel, constexprs, pointers, floats, launch)
        except Exception as e:  # noqa: BLE001 (reported per case, checked by the test)
            results[name] = dict(ok=False, error=f"{type(e).__name__}: {str(e)[:2000]}")
            continue
        results[name] = dict(ok=bool(compiled.asm.get("cubin")), error=None, shared=int(compiled.metadata.shared),
                             wgmma="wgmma" in compiled.asm["ptx"])
    json.dump(results, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
