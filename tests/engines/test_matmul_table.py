"""The split-K table: reading it (every problem named), the bucket an M falls in, the forward
sending exactly the listed products to the split-K kernel, and an engine using it still giving
transformers' float32 greedy tokens (on a CPU through Triton's interpreter)."""

from __future__ import annotations

import json
import re
import sys

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("triton")

from engines.core.build import build_engine  # noqa: E402
from engines.model import splitk_matmul  # noqa: E402
from engines.model.matmul_table import load_table  # noqa: E402
from engines.model.splitk_matmul import SplitKConfig  # noqa: E402
from engines.request import ConfigError, Request  # noqa: E402
from tests.engines.helpers import drive, hf_generate, hf_model  # noqa: E402

SMALL = dict(block_m=16, block_n=32, block_k=16, split_k=2, num_warps=4, num_stages=2)


def entry(n, k, max_m, dtype="float32", **config):
    return {"n": n, "k": k, "dtype": dtype, "max_m": max_m, "config": {**SMALL, **config}}


def write(tmp_path, entries, name="table.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"device": "test", "entries": entries}))
    return path


def test_an_m_falls_in_the_smallest_bucket_that_holds_it(tmp_path):
    table = load_table(write(tmp_path, [entry(64, 32, 64, split_k=4), entry(64, 32, 16, split_k=2)]))
    assert len(table) == 2
    assert table.config_for(64, 32, torch.float32, 1).split_k == 2
    assert table.config_for(64, 32, torch.float32, 16).split_k == 2
    assert table.config_for(64, 32, torch.float32, 17).split_k == 4
    assert table.config_for(64, 32, torch.float32, 64).split_k == 4
    assert table.config_for(64, 32, torch.float32, 65) is None  # past the last bucket: cuBLAS
    assert table.config_for(32, 64, torch.float32, 8) is None  # another shape
    assert table.config_for(64, 32, torch.bfloat16, 8) is None  # another dtype


def test_listed_products_run_split_k_and_the_rest_f_linear(tmp_path, monkeypatch):
    table = load_table(write(tmp_path, [entry(40, 48, 16)]))
    calls = []
    real = splitk_matmul.linear
    monkeypatch.setattr(splitk_matmul, "linear", lambda *a, **kw: calls.append(kw["config"]) or real(*a, **kw))
    g = torch.Generator().manual_seed(0)
    w, b = torch.randn(40, 48, generator=g), torch.randn(40, generator=g)
    small, large = torch.randn(2, 5, 48, generator=g), torch.randn(17, 48, generator=g)
    got = table.linear(small, w, b)  # 10 rows: in the bucket
    assert calls == [SplitKConfig(**SMALL)]
    assert torch.allclose(got, F.linear(small, w, b), atol=1e-5, rtol=1e-5) and got.shape == (2, 5, 40)
    assert torch.equal(table.linear(large, w, b), F.linear(large, w, b)) and len(calls) == 1
    assert torch.equal(table.linear(small[..., :40], w[:, :40]), F.linear(small[..., :40], w[:, :40]))
    assert len(calls) == 1


@pytest.mark.parametrize(
    "content,words",
    [
        ("{", r"not JSON \(line 1, column 2"),
        ('{"entries": 3}', "expected an object with a list 'entries'"),
        ('{"entries": [7]}', r"entries\[0\]: expected an object, got 7"),
        (json.dumps({"entries": [{**entry(8, 8, 16), "n": 0}]}), r"entries\[0\]\.n is 0, expected a positive integer"),
        (json.dumps({"entries": [entry(8, 8, 16, dtype="fp8")]}), r"entries\[0\]\.dtype is 'fp8', expected one of"),
        (json.dumps({"entries": [{**entry(8, 8, 16), "config": {"block_m": 16}}]}),
         r"entries\[0\]\.config is \{'block_m': 16\}, expected the fields of SplitKConfig"),
        (json.dumps({"entries": [entry(8, 8, 16, block_k=8)]}), r"entries\[0\]\.config: .*at least 16"),
        (json.dumps({"entries": [entry(8, 8, 16), entry(8, 8, 16)]}),
         r"entries\[1\]: a second entry for n=8, k=8, float32, max_m=16"),
    ],
)
def test_bad_tables_are_named(tmp_path, content, words):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=rf"matmul_table {re.escape(str(path))}.*{words}"):
        load_table(path)


def test_a_missing_table_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"matmul_table .*nope\.json: cannot read"):
        load_table(tmp_path / "nope.json")


def test_engine_with_split_k_decode_products_equals_generate(tmp_path, monkeypatch):
    """`tiny`'s five products (q/k/v 256x128, o 128x128, gate/up 768x128, down 128x384, LM
    head 2048x128) in the split-K kernel at up to 4 rows, cuBLAS above: float32 greedy tokens
    equal transformers'."""
    shapes = [(256, 128), (128, 128), (768, 128), (128, 384), (2048, 128)]
    path = write(tmp_path, [entry(n, k, 4, split_k=3) for n, k in shapes])
    calls = []
    real = splitk_matmul.linear
    monkeypatch.setattr(splitk_matmul, "linear", lambda x, *a, **kw: calls.append(x.shape[0]) or real(x, *a, **kw))
    requests = [Request("a", (5, 17, 99, 1023, 7, 250), 6), Request("b", tuple(range(30, 71)), 5),
                Request("c", (3, 1900), 7)]
    expected = hf_generate(hf_model("tiny"), requests)
    engine = build_engine("paged", "tiny", device="cpu", dtype="float32", matmul_table=str(path), max_batch=4,
                          token_budget=24, block_size=8)
    assert engine.describe()["options"]["matmul_table"] == str(path)
    tokens, status, _ = drive(engine, requests, add_every=2)
    assert {r.id: tokens[r.id] for r in requests} == expected
    assert set(status.values()) == {"ok"}
    assert calls and max(calls) <= 4  # decode steps ran split-K; prompt steps (more rows) did not


def test_matmul_table_and_batch_invariant_exclude_each_other(tmp_path):
    path = write(tmp_path, [entry(256, 128, 4)])
    with pytest.raises(ConfigError, match="matmul_table and batch_invariant=True exclude each other"):
        build_engine("paged", "tiny", device="cpu", dtype="float32", matmul_table=str(path), batch_invariant=True)


def test_a_table_without_triton_is_a_config_error(tmp_path, monkeypatch):
    path = write(tmp_path, [entry(8, 8, 16)])
    monkeypatch.setitem(sys.modules, "engines.model.splitk_matmul", None)  # import fails
    with pytest.raises(ConfigError, match=r"matmul_table .*table\.json: the split-K kernel needs the triton package"):
        load_table(path)
