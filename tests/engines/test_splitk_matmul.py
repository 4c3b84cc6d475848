"""The split-K product for decode-sized M: F.linear's results for every split count, ragged
K (splits ending part-way into a tile, a last split shorter than the others, fewer splits
than asked), bias, rows and columns past a tile, strided and batched inputs. On a CPU it runs
in Triton's interpreter (tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from engines.model.splitk_matmul import SplitKConfig, linear  # noqa: E402
from tests.engines.test_invariant_matmul import DEVICE, TOLERANCE, data, rel  # noqa: E402

SMALL = dict(block_m=16, block_n=32, block_k=16, num_stages=2)


@pytest.mark.parametrize("dtype", list(TOLERANCE))
@pytest.mark.parametrize("split_k", [1, 2, 3, 8])
@pytest.mark.parametrize("k", [100, 128])  # K ending part-way into a tile, and a multiple of it
@pytest.mark.parametrize("bias", [False, True])
def test_matches_f_linear(dtype, split_k, k, bias):
    x, w, b = data(21, k, 70, dtype, bias=bias)  # M and N end part-way into a tile
    got = linear(x, w, b, config=SplitKConfig(split_k=split_k, **SMALL))
    want = F.linear(x.double(), w.double(), None if b is None else b.double())
    assert got.dtype == dtype and got.shape == (21, 70)
    assert rel(got, want) < TOLERANCE[dtype]


def test_more_splits_than_k_tiles_runs_fewer_splits():
    # K = 40: three tiles of 16; split_k 8 asks for more splits than there are tiles
    config = SplitKConfig(split_k=8, **SMALL)
    assert config.k_per_split(40) == 16
    x, w, _ = data(5, 40, 33, torch.float32)
    assert rel(linear(x, w, config=config), F.linear(x.double(), w.double())) < 1e-5


def test_float32_is_exact_to_rounding_whatever_the_split():
    x, w, _ = data(16, 96, 48, torch.float32, seed=4)
    results = [linear(x, w, config=SplitKConfig(split_k=s, **SMALL)) for s in (1, 2, 6)]
    want = F.linear(x.double(), w.double())
    assert all(rel(r, want) < 1e-6 for r in results)


def test_strided_and_batched_inputs():
    g = torch.Generator().manual_seed(3)
    big = torch.randn(2, 9, 150, generator=g).to(DEVICE)
    w = (torch.randn(40, 100, generator=g) / 10).to(DEVICE)
    config = SplitKConfig(split_k=3, **SMALL)
    column_major = big[0, :, 7:107].t().contiguous().t()
    for x in (big[0, :, 7:107], big[:, :, 7:107], column_major):
        got = linear(x, w, config=config)
        assert got.shape == (*x.shape[:-1], 40)
        assert rel(got, F.linear(x.double(), w.double())) < 1e-5


def test_bad_operands_and_configurations_are_named():
    x, w, _ = data(4, 32, 16, torch.float32)
    with pytest.raises(ValueError, match=r"K = weight.shape\[1\] = 32; got x \(4, 31\)"):
        linear(x[:, :31], w, config=SplitKConfig(split_k=2, **SMALL))
    with pytest.raises(ValueError, match="tl.dot needs tiles of at least 16"):
        SplitKConfig(block_m=8, block_n=32, block_k=16, split_k=2)
    with pytest.raises(ValueError, match="split_k must be >= 1"):
        SplitKConfig(split_k=0, **SMALL)
