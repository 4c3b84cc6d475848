"""Request parsing without a server: any JSON body either parses or is a 400 naming a field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.serve.protocol import ApiError, GenerationRequest, check_context, parse_chat, parse_completion, parse_json

FIELDS = ["prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stream", "stream_options",
          "ignore_eos", "stop_token_ids", "n", "stop", "logprobs", "model", "messages", "max_completion_tokens"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(FIELDS + ["role", "content", "include_usage"]), inner, max_size=3),
    max_leaves=8,
)
bodies = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6)


@settings(max_examples=200, deadline=None)
@given(bodies, st.sampled_from([parse_completion, parse_chat]))
def test_any_body_parses_or_is_a_400_naming_a_field(body, parse):
    try:
        parsed = parse(body)
    except ApiError as e:
        assert e.status == 400
        assert e.param is None or e.param.split(".")[0].split("[")[0] in FIELDS
        assert e.message
        return
    assert isinstance(parsed, GenerationRequest)
    assert parsed.max_tokens >= 1 and 0 <= parsed.temperature <= 2 and 0 < parsed.top_p <= 1


@given(st.lists(st.integers(0, 100), min_size=1, max_size=20), st.integers(1, 50), st.booleans())
def test_valid_completion_round_trips(prompt, max_tokens, stream):
    req = parse_completion({"prompt": prompt, "max_tokens": max_tokens, "stream": stream, "temperature": 0, "seed": 7})
    assert (req.prompt, req.max_tokens, req.stream, req.temperature, req.seed) == (prompt, max_tokens, stream, 0.0, 7)


def test_defaults_follow_openai():
    req = parse_completion({"prompt": "hi"})
    assert (req.max_tokens, req.temperature, req.top_p, req.seed, req.stream) == (16, 1.0, 1.0, None, False)
    assert parse_completion({"prompt": [[1, 2]]}).prompt == [1, 2]  # a one-prompt batch is one prompt
    assert parse_completion({"prompt": [1], "top_k": -1}).top_k == 0  # vLLM's "off"


def test_context_check_names_the_limit():
    req = parse_completion({"prompt": [1] * 10, "max_tokens": 7})
    check_context(req, 10, 17)
    with pytest.raises(ApiError, match="at most 6") as e:
        check_context(req, 10, 16)
    assert e.value.param == "max_tokens"
    with pytest.raises(ApiError, match="context length is 10") as e:
        check_context(req, 10, 10)
    assert e.value.param == "prompt"


def test_parse_json_errors():
    with pytest.raises(ApiError, match="line 2, column 1"):
        parse_json(b'{"a": 1,\n}')
    with pytest.raises(ApiError, match="UTF-8"):
        parse_json(b'{"a": "\xff"}')
    with pytest.raises(ApiError, match="JSON object"):
        parse_json(b'"text"')
