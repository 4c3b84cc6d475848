"""The byte-level fallback and a local checkpoint's tokenizer, with incremental decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.serve.tokenizer import BYTE_OFFSET, ByteTokenizer, HFTokenizer, TokenizerError, load_tokenizer


@given(st.text(max_size=40))
def test_bytes_round_trip_token_by_token(text):
    tok = ByteTokenizer(vocab_size=2048, eos_token_ids=(2,))
    ids = tok.encode(text)
    assert all(BYTE_OFFSET <= t < BYTE_OFFSET + 256 for t in ids)
    decoder = tok.decoder()
    assert "".join(decoder.push([t]) for t in ids) == text


def test_byte_decoder_shows_other_ids_and_hides_special_ones():
    decoder = ByteTokenizer(vocab_size=2048, eos_token_ids=(2,)).decoder()
    assert decoder.push([0, 1, 2]) == ""
    assert decoder.push([ord("a") + BYTE_OFFSET, 1000]) == "a<|1000|>"


def test_byte_tokenizer_needs_room_for_bytes():
    with pytest.raises(TokenizerError, match="at least 259"):
        ByteTokenizer(vocab_size=128).encode("hi")


def test_chat_template_of_the_fallback():
    tok = ByteTokenizer(vocab_size=2048)
    ids = tok.encode_chat([{"role": "user", "content": "hi"}])
    assert bytes(t - BYTE_OFFSET for t in ids).decode() == "<|user|>\nhi\n<|assistant|>\n"


@pytest.fixture
def checkpoint_dir(tmp_path):
    """A local directory holding a small word-level tokenizer, as a checkpoint would."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "</s>": 1, "hello": 2, "world": 3, "again": 4}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=core, unk_token="[UNK]", eos_token="</s>").save_pretrained(tmp_path)
    return tmp_path


def test_a_checkpoint_directory_uses_its_own_tokenizer(checkpoint_dir):
    tok = load_tokenizer(str(checkpoint_dir), vocab_size=5)
    assert isinstance(tok, HFTokenizer)
    assert tok.eos_token_ids == (1,)
    ids = tok.encode("hello world again")
    assert ids == [2, 3, 4]
    decoder = tok.decoder()
    pieces = [decoder.push([t]) for t in ids + [1]]
    assert "".join(pieces).split() == ["hello", "world", "again"]
    assert pieces[-1] == ""  # eos is special: no text


def test_no_tokenizer_files_means_bytes(tmp_path):
    assert isinstance(load_tokenizer(str(tmp_path), vocab_size=2048), ByteTokenizer)
    assert isinstance(load_tokenizer("tiny", vocab_size=2048), ByteTokenizer)
