"""The built-in training text, read from ``corpus.txt`` beside this file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from .tokenizer import IM_END, IM_START

CORPUS_PATH = Path(__file__).with_name("corpus.txt")
_ROLES = ("system", "user", "assistant")


def render_message(role: str, text: str) -> str:
    """The ChatML form memscore renders a message node in (see docs/design.md)."""
    return f"{IM_START}{role}\n{text}{IM_END}\n"


@lru_cache(maxsize=1)
def load_documents() -> tuple[str, ...]:
    """Each prose line is a document; each conversation (consecutive role lines)
    is one document in the chat template, so the model learns the template too."""
    documents: list[str] = []
    conversation: list[str] = []

    def end_conversation() -> None:
        if conversation:
            documents.append("".join(conversation))
            conversation.clear()

    for line in CORPUS_PATH.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line.startswith("#"):
            continue
        role, sep, text = line.partition(": ")
        if sep and role in _ROLES:
            conversation.append(render_message(role, text))
            continue
        end_conversation()
        if line:
            documents.append(line)
    end_conversation()
    return tuple(documents)
