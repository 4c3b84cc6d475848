"""Text <-> token ids for the server: a local checkpoint's tokenizer, or a byte-level fallback.

Random-weight presets have no vocabulary file, so text prompts use bytes: UTF-8 byte b is
token id b + 3 (ids 0-2 are left to pad/bos/eos, as in Llama). Decoding maps ids 3..258
back to bytes and shows any other id as `<|id|>`, so each generated token still gives visible
text; special ids (eos, bos, pad: 0-2) give none. Chat messages are joined as

    <|system|>\\nYou are terse.\\n<|user|>\\nHello\\n<|assistant|>\\n

A local checkpoint directory with tokenizer files uses transformers.AutoTokenizer (local
files only, never a download) and its chat template when it has one.
"""

from __future__ import annotations

import codecs
from pathlib import Path

BYTE_OFFSET = 3
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class TokenizerError(ValueError):
    """Text that this tokenizer cannot turn into ids (e.g. a vocabulary too small for bytes)."""


def simple_chat_prompt(messages: list[dict]) -> str:
    return "".join(f"<|{m['role']}|>\n{m['content']}\n" for m in messages) + "<|assistant|>\n"


class ByteDecoder:
    """Incremental: bytes of a multi-byte character are held until the character is whole."""

    def __init__(self, special_ids: set[int]):
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._special = special_ids

    def push(self, ids: list[int]) -> str:
        out = []
        for t in ids:
            if BYTE_OFFSET <= t < BYTE_OFFSET + 256:
                out.append(self._utf8.decode(bytes([t - BYTE_OFFSET])))
            elif t not in self._special and t >= BYTE_OFFSET:
                out.append(self._utf8.decode(b"", final=True))
                out.append(f"<|{t}|>")
        return "".join(out)


class ByteTokenizer:
    name = "bytes"

    def __init__(self, vocab_size: int, eos_token_ids: tuple[int, ...] = ()):
        self.vocab_size = vocab_size
        self.eos_token_ids = eos_token_ids

    def encode(self, text: str) -> list[int]:
        if self.vocab_size < BYTE_OFFSET + 256:
            raise TokenizerError(
                f"text prompts need a vocabulary of at least {BYTE_OFFSET + 256} ids for the byte "
                f"fallback; this model has {self.vocab_size}: send token ids instead"
            )
        return [b + BYTE_OFFSET for b in text.encode("utf-8")]

    def encode_chat(self, messages: list[dict]) -> list[int]:
        return self.encode(simple_chat_prompt(messages))

    def decoder(self) -> ByteDecoder:
        return ByteDecoder(set(range(BYTE_OFFSET)) | set(self.eos_token_ids))


class HFDecoder:
    """Incremental detokenization (vLLM's prefix/read offsets): decode a short window of recent
    ids and emit only the new suffix, holding back while the text ends in a partial character."""

    def __init__(self, tok):
        self._tok = tok
        self._ids: list[int] = []
        self._prefix = 0
        self._read = 0

    def push(self, ids: list[int]) -> str:
        self._ids.extend(ids)
        decode = lambda part: self._tok.decode(part, skip_special_tokens=True)  # noqa: E731
        prefix_text = decode(self._ids[self._prefix : self._read])
        new_text = decode(self._ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self._ids)
            return new_text[len(prefix_text) :]
        return ""


class HFTokenizer:
    def __init__(self, path: str | Path):
        from transformers import AutoTokenizer

        self.name = str(path)
        self._tok = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.eos_token_ids = () if self._tok.eos_token_id is None else (self._tok.eos_token_id,)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=True))

    def encode_chat(self, messages: list[dict]) -> list[int]:
        if getattr(self._tok, "chat_template", None):
            ids = self._tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
            # transformers 5 returns a BatchEncoding here, 4.x a plain list
            return list(ids["input_ids"] if hasattr(ids, "keys") else ids)
        return self.encode(simple_chat_prompt(messages))

    def decoder(self) -> HFDecoder:
        return HFDecoder(self._tok)


def load_tokenizer(model: str | None, vocab_size: int, eos_token_ids: tuple[int, ...] = ()):
    """The checkpoint's own tokenizer when `model` is a directory holding tokenizer files,
    else the byte-level fallback."""
    if model and Path(model).is_dir() and any((Path(model) / f).is_file() for f in TOKENIZER_FILES):
        return HFTokenizer(model)
    return ByteTokenizer(vocab_size, eos_token_ids)
