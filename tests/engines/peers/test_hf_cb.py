"""hf-cb specifics: greedy only, options mapped onto the installed ContinuousBatchingConfig
(its field names changed between releases), resolved sizes in describe(), and a crash of
transformers' generation loop ending every request instead of hanging the harness."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from engines.peers.hf_cb import CPU_CACHE_TOKENS, CPU_MAX_BATCH_TOKENS, cb_config_kwargs
from engines.registry import create_engine
from engines.request import ConfigError, Request, RequestError, SamplingParams
from tests.engines.peers.conftest import CPU, PEERS, collect


@dataclass
class ConfigWithPages:  # transformers >= 5.17
    page_size: int = 256
    num_blocks: int | None = None
    max_batch_tokens: int | None = None
    use_cuda_graph: bool | None = None
    scheduler_type: str = "fifo"


@dataclass
class ConfigWithBlocks:  # the field names before page_size
    block_size: int = 128
    num_blocks: int | None = None
    max_batch_tokens: int | None = None
    scheduler: str = "fifo"


def test_options_map_onto_the_installed_field_names():
    opts = {"block_size": 32, "use_cuda_graph": True, "scheduler": "prefill_first"}
    assert cb_config_kwargs(opts, ConfigWithPages, on_cpu=False) == {
        "page_size": 32, "use_cuda_graph": True, "scheduler_type": "prefill_first",
    }  # fmt: skip
    with pytest.raises(ConfigError, match="use_cuda_graph is not supported by the installed transformers"):
        cb_config_kwargs(opts, ConfigWithBlocks, on_cpu=False)
    assert cb_config_kwargs({"block_size": 32}, ConfigWithBlocks, on_cpu=False) == {"block_size": 32}
    # on the CPU the cache is sized in tokens, whatever the block size is called
    assert cb_config_kwargs({}, ConfigWithBlocks, on_cpu=True) == {
        "num_blocks": CPU_CACHE_TOKENS // 128, "max_batch_tokens": CPU_MAX_BATCH_TOKENS,
    }  # fmt: skip
    assert cb_config_kwargs({"block_size": 64, "max_batch_tokens": 99}, ConfigWithPages, on_cpu=True) == {
        "page_size": 64, "num_blocks": CPU_CACHE_TOKENS // 64, "max_batch_tokens": 99,
    }  # fmt: skip


def test_unknown_or_ill_typed_options_are_config_errors():
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['cuda_graphs'\].*use_cuda_graph \(bool\)"):
        create_engine("hf-cb", cuda_graphs=True, **CPU)
    with pytest.raises(ConfigError, match="default_compile_level=7: expected one of 0, 1, 2, 3"):
        create_engine("hf-cb", default_compile_level=7, **CPU)
    with pytest.raises(ConfigError, match="use_cuda_graph='yes': expected true or false"):
        create_engine("hf-cb", use_cuda_graph="yes", **CPU)
    with pytest.raises(ConfigError, match="max_model_len=4096 exceeds the model's max_position_embeddings=2048"):
        create_engine("hf-cb", max_model_len=4096, **CPU)


def test_describe_shows_what_transformers_resolved():
    engine = create_engine("hf-cb", **CPU, **PEERS["hf-cb"])
    options = engine.describe()["options"]
    assert options["block_size"] == 16 and options["num_blocks"] == 64
    assert options["cache_tokens"] == 16 * 64
    assert options["max_model_len"] == 16 * 64, "a request longer than the whole cache could never be scheduled"
    assert options["use_cuda_graph"] == [False, False], "no graphs on the CPU"
    with pytest.raises(RequestError, match="max_model_len=1024"):
        engine.add_request(Request("too-long", (5,) * 1000, 100))
    engine.close()
    with pytest.raises(ConfigError, match=r"max_model_len=2000 exceeds the KV cache \(1024 tokens"):
        create_engine("hf-cb", max_model_len=2000, **CPU, **PEERS["hf-cb"])


def test_cpu_defaults_size_the_cache_in_tokens():
    engine = create_engine("hf-cb", **CPU)
    options = engine.describe()["options"]
    engine.close()
    assert options["cache_tokens"] == CPU_CACHE_TOKENS
    assert options["max_batch_tokens"] == CPU_MAX_BATCH_TOKENS


def test_sampling_requests_are_refused_greedy_ones_run(reference):
    requests, expected, _ = reference
    engine = create_engine("hf-cb", **CPU, **PEERS["hf-cb"])
    with pytest.raises(RequestError, match="hf-cb runs greedy only"):
        engine.add_request(Request("hot", (5, 6, 7), 4, sampling=SamplingParams(temperature=0.8)))
    tokens, status, _, _ = collect(engine, requests[:2])
    engine.close()
    assert status == {"r0": "ok", "r1": "ok"}
    assert tokens == {"r0": expected["r0"], "r1": expected["r1"]}


def test_a_crash_of_the_generation_loop_ends_every_request(reference):
    requests, _, _ = reference
    engine = create_engine("hf-cb", **CPU, **PEERS["hf-cb"])

    def broken_forward(*args, **kwargs):
        raise RuntimeError("injected device failure")

    engine.model.forward = broken_forward
    _, status, errors, _ = collect(engine, requests[:3], limit_s=30)
    assert status == {r.id: "error" for r in requests[:3]}
    assert all("injected device failure" in errors[r.id] for r in requests[:3]), errors
    # transformers' loop is gone: a new request ends with an error instead of waiting forever
    _, status, errors, _ = collect(engine, [requests[3]], limit_s=30)
    assert status == {requests[3].id: "error"}
    engine.close()
