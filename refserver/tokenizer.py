"""A word-level tokenizer with byte fallback that round-trips any text.

Ids are laid out as: the two special tokens, then the 256 byte tokens, then the
multi-character pieces seen in the built-in corpus, most frequent first. A piece
that is not in the vocabulary is spelt out as its UTF-8 bytes, so every string can
be encoded and ``decode(encode(s)) == s``.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable, Sequence

IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (IM_START, IM_END)
N_BYTES = 256
FIRST_BYTE_ID = len(SPECIAL_TOKENS)
FIRST_PIECE_ID = FIRST_BYTE_ID + N_BYTES

_SPECIAL_SPLIT = re.compile("(" + "|".join(re.escape(s) for s in SPECIAL_TOKENS) + ")")
# Newlines are pieces of their own, so that text split after a newline encodes to
# the same ids as the whole (the chat template joins nodes at newlines and special
# tokens, and memscore tokenizes nodes one at a time). Every character falls into
# exactly one alternative, so the pieces always concatenate back to the input.
_PIECE = re.compile(
    r"\n"
    r"| ?[^\W\d_]+"  # a word (letters only), with the space before it
    r"| ?\d"  # digits one at a time keep numbers from flooding the vocabulary
    r"| ?[^\w\s]| ?_"  # one punctuation mark or symbol
    r"|[^\S\n]+"  # any other run of whitespace
)


def pre_tokenize(text: str) -> list[str]:
    """Split text into special tokens and pieces; the parts join back to ``text``."""
    parts: list[str] = []
    for i, segment in enumerate(_SPECIAL_SPLIT.split(text)):
        if i % 2:
            parts.append(segment)
        elif segment:
            parts.extend(_PIECE.findall(segment))
    return parts


class Tokenizer:
    def __init__(self, pieces: Sequence[str]):
        self.pieces = list(pieces)
        self.im_start_id = 0
        self.im_end_id = 1
        self._special_ids = {IM_START: 0, IM_END: 1}
        self.special_ids = frozenset(self._special_ids.values())
        self._piece_ids = {p: FIRST_PIECE_ID + i for i, p in enumerate(self.pieces)}
        # Single ASCII characters are spelt by their byte token, so they need no entry.
        self._bytes_of_id: list[bytes] = [s.encode() for s in SPECIAL_TOKENS]
        self._bytes_of_id += [bytes([b]) for b in range(N_BYTES)]
        self._bytes_of_id += [p.encode("utf-8", "surrogatepass") for p in self.pieces]
        self.vocab_size = len(self._bytes_of_id)
        self.fingerprint = hashlib.sha256(
            json.dumps(self.pieces, ensure_ascii=False).encode("utf-8", "surrogatepass")
        ).hexdigest()[:16]

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> Tokenizer:
        """Derive the vocabulary deterministically: every multi-character piece of
        the texts, ordered by descending frequency and then by the piece itself."""
        counts: Counter[str] = Counter()
        for text in texts:
            counts.update(pre_tokenize(text))
        pieces = [p for p in counts if p not in SPECIAL_TOKENS and len(p.encode()) > 1]
        pieces.sort(key=lambda p: (-counts[p], p))
        return cls(pieces)

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        special, piece_ids = self._special_ids, self._piece_ids
        for part in pre_tokenize(text):
            token = special.get(part)
            if token is None:
                token = piece_ids.get(part)
            if token is not None:
                ids.append(token)
            elif part[0] == " " and part[1:] in piece_ids:
                # " Word" unseen but "Word" known: keep the word whole.
                ids += (FIRST_BYTE_ID + ord(" "), piece_ids[part[1:]])
            else:
                ids += (FIRST_BYTE_ID + b for b in part.encode("utf-8", "surrogatepass"))
        return ids

    def token_bytes(self, token_id: int) -> bytes:
        return self._bytes_of_id[token_id]

    def decode(self, ids: Iterable[int]) -> str:
        data = b"".join([self._bytes_of_id[i] for i in ids])
        return _decode_utf8(data)

    def token_str(self, token_id: int) -> str:
        """A readable, unique name for one token (used as a key in logprobs)."""
        data = self._bytes_of_id[token_id]
        if FIRST_BYTE_ID <= token_id < FIRST_PIECE_ID and data[0] >= 0x80:
            return f"<0x{data[0]:02X}>"
        return data.decode("utf-8", "surrogatepass")

    def incremental_decoder(self) -> IncrementalDecoder:
        return IncrementalDecoder(self)


def _decode_utf8(data: bytes) -> str:
    try:
        # surrogatepass so that text holding lone surrogates (valid in JSON) survives.
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        # Only reachable for id sequences that no text encodes to (e.g. sampled ones).
        return data.decode("utf-8", "replace")


class IncrementalDecoder:
    """Turns a stream of token ids into text without splitting a UTF-8 character
    that a byte-fallback word spreads over several tokens."""

    def __init__(self, tokenizer: Tokenizer):
        self._tokenizer = tokenizer
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, token_ids: Iterable[int]) -> str:
        return self._decoder.decode(b"".join(self._tokenizer.token_bytes(i) for i in token_ids))

    def flush(self) -> str:
        return self._decoder.decode(b"", final=True)
