"""Bad input gets a clear error naming the problem, and no other request is harmed."""

from __future__ import annotations

import json

import pytest

from engines.registry import create_engine
from engines.request import ConfigError, Request, RequestError
from tests.engines.helpers import drive


@pytest.fixture(scope="module")
def engines():
    return {name: create_engine(name, model="tiny", device="cpu", max_model_len=256) for name in ["naive", "static", "continuous", "paged"]}


BAD = [
    (Request("long", tuple([5] * 250), 10), "exceeds the context length max_model_len=256"),
    (Request("zero", (5, 6), 0), "max_new_tokens must be >= 1, got 0"),
    (Request("empty", (), 4), "empty prompt"),
    (Request("vocab", (5, 2048, 7), 4), "token id 2048 outside the vocabulary [0, 2048)"),
    (Request("neg", (5, -1), 4), "token id -1 outside the vocabulary"),
]


@pytest.mark.parametrize("name", ["naive", "static", "continuous", "paged"])
def test_bad_requests_are_refused_and_others_finish(engines, name):
    engine = engines[name]
    good = [Request(f"ok{i}", (3 + i, 9, 10, 11), 3 + i) for i in range(3)]
    engine.add_request(good[0])
    for bad, message in BAD:
        with pytest.raises(RequestError) as err:
            engine.add_request(bad)
        assert message in str(err.value) and repr(bad.id) in str(err.value)
    with pytest.raises(RequestError, match="already in the engine"):
        engine.add_request(good[0])
    _, status, _ = drive(engine, good[1:])
    assert status == {r.id: "ok" for r in good}
    assert engine.kv.is_idle()


def test_sampling_parameters_are_checked(engines):
    from engines.request import SamplingParams

    engine = engines["paged"]
    with pytest.raises(RequestError, match="top_p must be in"):
        engine.add_request(Request("p", (5,), 2, sampling=SamplingParams(temperature=1.0, top_p=0.0)))
    with pytest.raises(RequestError, match="temperature must be >= 0"):
        engine.add_request(Request("t", (5,), 2, sampling=SamplingParams(temperature=-1.0)))


def test_unknown_preset():
    with pytest.raises(ConfigError, match="neither a preset .* nor a local checkpoint directory"):
        create_engine("paged", model="llama-70b-typo", device="cpu")


def test_checkpoint_directory_without_config(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ConfigError, match="no config.json"):
        create_engine("paged", model=str(tmp_path), device="cpu")


def test_checkpoint_with_broken_config(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "llama",')
    with pytest.raises(ConfigError, match=r"config.json: invalid JSON at line 1"):
        create_engine("paged", model=str(tmp_path), device="cpu")


def test_unsupported_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ConfigError, match="model type 'gpt2' is not supported"):
        create_engine("paged", model=str(tmp_path), device="cpu")


@pytest.mark.parametrize("name", ["naive", "static", "continuous", "paged"])
def test_kv_budget_too_small_for_one_request(name):
    with pytest.raises(ConfigError, match="too small for even one request of max_model_len=512"):
        create_engine(name, model="tiny", device="cpu", max_model_len=512, kv_tokens=100)


def test_bad_options():
    with pytest.raises(ConfigError, match="unknown options \\['max_batchsize'\\]"):
        create_engine("paged", model="tiny", device="cpu", max_batchsize=4)
    with pytest.raises(ConfigError, match="token_budget \\(4\\) must be >= max_batch \\(8\\)"):
        create_engine("paged", model="tiny", device="cpu", max_batch=8, token_budget=4)
    with pytest.raises(ConfigError, match="mixed_graph_tokens must be an integer >= 0 \\(0: off\\), got -1"):
        create_engine("paged", model="tiny", device="cpu", mixed_graph_tokens=-1)
    with pytest.raises(ConfigError, match="prefix_caching needs the paged KV cache"):
        create_engine("continuous", model="tiny", device="cpu", prefix_caching=True)
    with pytest.raises(ConfigError, match="unknown engine 'pagd'"):
        create_engine("pagd")
    with pytest.raises(ConfigError, match="unknown dtype 'fp8'"):
        create_engine("paged", model="tiny", device="cpu", dtype="fp8")
