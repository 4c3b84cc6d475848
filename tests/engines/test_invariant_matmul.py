"""The batch-invariant matrix product: F.linear's results, and a row's result independent of
the batch it is in, bitwise. On a CPU it runs in Triton's interpreter (tests/conftest.py), so
CI checks the kernel's indexing, masking and tiling; the GPU tests check the bits on real
hardware and real shapes."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from engines.core.build import build_engine  # noqa: E402
from engines.model import invariant_matmul  # noqa: E402
from engines.model.invariant_matmul import MatmulConfig, config_for, linear  # noqa: E402
from engines.request import ConfigError, Request  # noqa: E402
from tests.engines.helpers import drive, hf_generate, hf_model  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Tiles smaller than the test shapes, so that M, N and K each span several tiles and end
# part-way into one (the default configs' tiles are larger than the CPU test shapes).
SMALL = MatmulConfig(block_m=16, block_n=32, block_k=16, num_warps=4, num_stages=2)
CONFIGS = {"small-tiles": SMALL, "default": None}
TOLERANCE = {torch.float32: 1e-5, torch.bfloat16: 1e-2, torch.float16: 2e-3}


def rel(a, b):
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


def data(m, k, n, dtype, seed=0, bias=False):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(m, k, generator=g).to(DEVICE, dtype)
    w = (torch.randn(n, k, generator=g) / k**0.5).to(DEVICE, dtype)
    b = torch.randn(n, generator=g).to(DEVICE, dtype) if bias else None
    return x, w, b


@pytest.mark.parametrize("config", list(CONFIGS))
@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("k", [100, 64])  # K ending part-way into a tile, and a multiple of it
def test_matches_f_linear(config, dtype, bias, k):
    x, w, b = data(37, k, 70, dtype, bias=bias)
    got = linear(x, w, b, config=CONFIGS[config])
    want = F.linear(x.double(), w.double(), None if b is None else b.double())
    assert got.dtype == dtype and got.shape == (37, 70)
    assert rel(got, want) < TOLERANCE[dtype]


@pytest.mark.parametrize("layout", ["column-slice", "strided-columns", "transposed", "3-d"])
def test_non_contiguous_and_batched_inputs(layout):
    g = torch.Generator().manual_seed(3)
    big = torch.randn(4, 9, 150, generator=g).to(DEVICE)
    x = {
        "column-slice": big[0, :, 7:107],  # rows 150 apart, columns contiguous
        "strided-columns": big[0, :, ::3][:, :50],  # columns 3 apart
        "transposed": big[0, :, :50].t(),  # [50, 9] with column stride 150
        "3-d": big[:, :, :40],  # [4, 9, 40]: leading dimensions kept, as F.linear does
    }[layout]
    w, b = data(1, x.shape[-1], 33, torch.float32, seed=4, bias=True)[1:]
    got = linear(x, w, b, config=SMALL)
    assert got.shape == (*x.shape[:-1], 33)
    assert rel(got, F.linear(x.double(), w.double(), b.double())) < 1e-5


def test_empty_batch_and_empty_sum():
    x, w, b = data(0, 24, 10, torch.float32, bias=True)
    out = linear(x, w, b)
    assert out.shape == (0, 10) and out.dtype == torch.float32
    x, w, b = data(3, 0, 10, torch.float32, bias=True)
    assert torch.equal(linear(x, w, b), b.expand(3, 10))
    assert torch.equal(linear(x, w), torch.zeros(3, 10, device=DEVICE))


@pytest.mark.parametrize(
    "x_shape,w_shape,b_shape,dtypes,error,words",
    [
        ((5, 8), (6, 9), None, None, ValueError, ["x (5, 8)", "weight (6, 9)", "K = weight.shape[1] = 9"]),
        ((5, 8), (48,), None, None, ValueError, ["weight must be 2-D", "weight (48,)"]),
        ((5, 8), (6, 8), (5,), None, ValueError, ["bias (5,)", "N = weight.shape[0] = 6"]),
        ((), (6, 8), None, None, ValueError, ["x ()"]),
        ((5, 8), (6, 8), None, (torch.float32, torch.bfloat16), TypeError,
         ["x torch.float32", "weight torch.bfloat16"]),
        ((5, 8), (6, 8), None, (torch.float64, torch.float64), TypeError, ["torch.float64 not supported"]),
    ],
)
def test_bad_input_is_named(x_shape, w_shape, b_shape, dtypes, error, words):
    x_dtype, w_dtype = dtypes or (torch.float32, torch.float32)
    x = torch.zeros(x_shape, dtype=x_dtype, device=DEVICE)
    w = torch.zeros(w_shape, dtype=w_dtype, device=DEVICE)
    b = torch.zeros(b_shape, device=DEVICE) if b_shape else None
    with pytest.raises(error) as info:
        linear(x, w, b)
    for word in words:
        assert word in str(info.value)


@pytest.fixture
def dot_row_by_row(monkeypatch):
    """On a CPU the interpreter's tl.dot is numpy's matmul, whose BLAS rounds a row
    differently by its position in the tile (a CPU artefact: an MMA computes each output
    element from its own row and column alone). One matrix-vector product a row puts every
    row through the same code, so what the test sees is the kernel's own indexing: tiles,
    wrapped rows, masks, the K loop. The GPU tests below check the hardware itself."""
    if DEVICE == "cuda":
        return
    interpreter = pytest.importorskip("triton.runtime.interpreter")

    def create_dot(self, a, b, d, input_precision, max_num_imprecise_acc):
        rows = np.stack([np.matmul(row, b.data, dtype=d.data.dtype) for row in a.data])
        return interpreter.TensorHandle(rows + d.data, d.dtype.scalar)

    monkeypatch.setattr(interpreter.InterpreterBuilder, "create_dot", create_dot)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("bias", [False, True])
def test_a_rows_result_does_not_depend_on_its_batch(dtype, bias, dot_row_by_row):
    x, w, b = data(70, 40, 50, dtype, seed=5, bias=bias)
    full = linear(x, w, b, config=SMALL)
    for m in [1, 3, 15, 16, 17, 33, 69]:  # 1, non-multiples of block_m (16), multiples
        assert torch.equal(linear(x[:m], w, b, config=SMALL), full[:m]), f"first {m} rows differ"
    tail = linear(x[41:], w, b, config=SMALL)  # the same rows at other positions in their tiles
    assert torch.equal(tail, full[41:])
    perm = torch.randperm(70, generator=torch.Generator().manual_seed(6)).to(DEVICE)
    assert torch.equal(linear(x[perm], w, b, config=SMALL), full[perm])
    # and with other rows around it: a row's neighbours in its tile do not matter either
    noise = data(70, 40, 50, dtype, seed=7)[0]
    mixed = torch.where((torch.arange(70, device=DEVICE) % 3 == 0)[:, None], x, noise)
    rows = torch.arange(0, 70, 3, device=DEVICE)
    assert torch.equal(linear(mixed, w, b, config=SMALL)[rows], full[rows])


@pytest.mark.parametrize("smem,n", [(232448, 128256), (232448, 2048), (101376, 128256), (101376, 2048)])
def test_launch_configuration_fits_the_devices_shared_memory(monkeypatch, smem, n):
    """H100/H200 (227 KiB a block) and a consumer GPU (99 KiB): the same tile, with fewer
    pipeline stages where shared memory is short (stages never change the sums)."""
    props = type("Props", (), {"shared_memory_per_block_optin": smem})()
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device: props)
    config_for.cache_clear()
    try:
        config = config_for(n, 2048, torch.bfloat16, torch.device("cuda"))
    finally:
        config_for.cache_clear()
    hopper = invariant_matmul.WIDE if n >= invariant_matmul.WIDE_MIN_N else invariant_matmul.NARROW
    assert (config.block_m, config.block_n, config.block_k) == (hopper.block_m, hopper.block_n, hopper.block_k)
    assert config.smem_bytes(2) <= smem
    one_more_stage = replace(config, num_stages=config.num_stages + 1)
    assert config.num_stages == hopper.num_stages or one_more_stage.smem_bytes(2) > smem, "as many stages as fit"


def test_engine_with_batch_invariant_matmul_equals_generate():
    """One small end-to-end case (the interpreter is slow): the paged engine with every
    matrix product in the invariant kernel gives transformers' float32 greedy tokens (on a
    GPU: the compiled kernel beside generate on the GPU)."""
    requests = [
        Request("a", (5, 17, 99, 1023, 7, 250), 6),
        Request("b", tuple(range(30, 71)), 5),
        Request("c", (3, 1900), 7),
    ]
    expected = hf_generate(hf_model("tiny", device=DEVICE), requests)
    engine = build_engine(
        "paged", "tiny", device=DEVICE, dtype="float32", batch_invariant=True, max_batch=4, token_budget=24,
        block_size=8,
    )
    assert engine.runner.model.linear is invariant_matmul.linear
    assert engine.describe()["options"]["batch_invariant"] is True
    tokens, status, _ = drive(engine, requests, add_every=2)
    assert {r.id: tokens[r.id] for r in requests} == expected
    assert set(status.values()) == {"ok"}


def test_without_the_option_the_forward_keeps_f_linear():
    engine = build_engine("paged", "tiny", device="cpu", dtype="float32")
    assert engine.runner.model.linear is F.linear


def test_batch_invariant_needs_a_device_triton_can_run_on(monkeypatch):
    monkeypatch.setattr(invariant_matmul, "interpreting", lambda: False)
    with pytest.raises(ConfigError, match="need a CUDA device"):
        build_engine("paged", "tiny", device="cpu", dtype="float32", batch_invariant=True)


def test_batch_invariant_needs_triton(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "triton", None)  # `import triton` fails
    with pytest.raises(ConfigError, match="needs the triton package"):
        build_engine("paged", "tiny", device="cpu", dtype="float32", batch_invariant=True)


# ---- on a CUDA GPU: real bf16 shapes, real tensor cores ----

GPU_SHAPES = [(2048, 3072), (4096, 2 * 14336)]  # (K, N): Llama 1B's q/k/v, Llama 8B's gate/up
GPU_ROWS = [1, 3, 64, 255, 1000, 4096]


@pytest.mark.gpu
@pytest.mark.parametrize("k,n", GPU_SHAPES)
@pytest.mark.parametrize("bias", [False, True])
def test_gpu_rows_are_bitwise_invariant_in_bf16(k, n, bias):
    torch.manual_seed(0)
    x = torch.randn(max(GPU_ROWS), k, device="cuda", dtype=torch.bfloat16)
    w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
    b = torch.randn(n, device="cuda", dtype=torch.bfloat16) if bias else None
    full = linear(x, w, b)
    for m in GPU_ROWS:
        got = linear(x[:m], w, b)
        assert torch.equal(got, full[:m]), f"M={m}: {(got != full[:m]).sum().item()} elements differ from M=4096's"
    perm = torch.randperm(1000, device="cuda")
    assert torch.equal(linear(x[:1000][perm], w, b), full[:1000][perm])
    # as close to the exact product as cuBLAS is
    exact = F.linear(x.double(), w.double(), None if b is None else b.double())
    cublas_error = rel(F.linear(x, w, b), exact)
    assert rel(full, exact) < max(2 * cublas_error, 1e-3)
    assert rel(full, F.linear(x, w, b)) < 1e-2


@pytest.mark.gpu
def test_gpu_float32_is_exact_float32(monkeypatch):
    torch.manual_seed(1)
    x = torch.randn(300, 1000, device="cuda")
    w = torch.randn(700, 1000, device="cuda") / 1000**0.5
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    full = linear(x, w)
    assert rel(full, F.linear(x.double(), w.double())) < 1e-6, "float32 must not go through TF32"
    for m in [1, 7, 129]:
        assert torch.equal(linear(x[:m], w), full[:m])
