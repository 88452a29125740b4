"""The model's own tokenizer (byte-level BPE) with the interface the routes use:
encode, decode, token_str, token_bytes, an incremental decoder, the special ids.

Every token is a fixed byte string (byte-level BPE maps each byte to one printable
character; added tokens such as ``<|im_end|>`` are their text), so decoding is the
concatenation of the tokens' bytes, and the n-gram engine's incremental decoder
works unchanged."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from ..tokenizer import IncrementalDecoder, _decode_utf8

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-to-unicode map, inverted: the character each byte is written as."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    n = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(printable, chars)}


class ModelTokenizer:
    def __init__(self, hf_tokenizer):
        self._hf = hf_tokenizer
        vocab: dict[str, int] = hf_tokenizer.get_vocab()
        self.vocab_size = max(vocab.values()) + 1
        added = {t.content for t in hf_tokenizer.added_tokens_decoder.values()}
        decoder = _byte_decoder()
        table: list[bytes] = [b""] * self.vocab_size
        for piece, i in vocab.items():
            if piece in added:
                table[i] = piece.encode()
            else:
                table[i] = bytes(decoder[c] for c in piece)
        self._bytes_of_id = table
        self._pieces = {i: piece for piece, i in vocab.items()}
        self.special_ids = frozenset(vocab[t] for t in added if t in vocab)
        self.im_start_id = vocab[IM_START]
        self.im_end_id = vocab[IM_END]
        digest = hashlib.sha256()
        for data in table:
            digest.update(len(data).to_bytes(4, "little") + data)
        self.fingerprint = "smollm2-" + digest.hexdigest()[:16]

    def encode(self, text: str) -> list[int]:
        # No BOS or other added tokens: memscore renders the template itself.
        return list(self._hf.encode(text, add_special_tokens=False))

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes_of_id[token_id]

    def decode(self, ids: Iterable[int]) -> str:
        return _decode_utf8(b"".join([self._bytes_of_id[i] for i in ids]))

    def token_str(self, token_id: int) -> str:
        """The token's text, or its byte-level spelling where it is part of a character."""
        data = self._bytes_of_id[token_id]
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return self._pieces[token_id]

    def incremental_decoder(self) -> IncrementalDecoder:
        return IncrementalDecoder(self)  # it only calls token_bytes
