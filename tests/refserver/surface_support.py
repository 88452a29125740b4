"""Prompts and helpers shared by the tests of the vLLM and SGLang surfaces."""

from __future__ import annotations

from contextlib import contextmanager

import httpx

from refserver.corpus import load_documents, render_message
from refserver.tokenizer import Tokenizer

TOKENIZER = Tokenizer.from_texts(load_documents())
IM_END = TOKENIZER.im_end_id
HEADER = TOKENIZER.encode("<|im_start|>assistant\n")

CONVERSATION = "".join(
    render_message(role, text)
    for role, text in [
        ("system", "You are a helpful assistant. Answer briefly and kindly."),
        ("user", "Memory: Professor Okonkwo keeps a tortoise named Galileo at the lighthouse on Tresco."),
        ("assistant", "Noted: Galileo the tortoise lives at the lighthouse on Tresco."),
        ("user", "Who looks after Galileo?"),
        ("assistant", "Professor Okonkwo keeps Galileo, a tortoise, at the lighthouse on Tresco."),
    ]
)
PROMPT = TOKENIZER.encode(CONVERSATION)
SHORT = TOKENIZER.encode(render_message("user", "Hi") + render_message("assistant", "Hello! How can I help?"))


def response_spans(ids: list[int]) -> list[tuple[int, int]]:
    """[start, end) of each assistant response: after its header, through its <|im_end|>."""
    spans, h = [], len(HEADER)
    for i in range(len(ids) - h + 1):
        if ids[i : i + h] == HEADER:
            end = ids.index(IM_END, i + h) + 1 if IM_END in ids[i + h :] else len(ids)
            spans.append((i + h, end))
    return spans


@contextmanager
def surface_client(handle):
    """An HTTP client on `handle`'s root, its controls reset before and after."""
    handle.control()
    with httpx.Client(base_url=handle.root_url, timeout=30) as c:
        yield c
    handle.control()
