"""A snapshot as the model sees it: its token sequences and its outline.

`snapshot_tokens(snapshot)` cuts the token ids of a context with a filter
(what a /score call sends); `Outline(snapshot)` is what planning reads (the
entries and memory keys, no ids). No Celery and no HTTP here.
"""

from .outline import Outline, memory_keys
from .tokens import (
    ChatTemplate,
    Entry,
    Filter,
    SnapshotTokens,
    TemplateError,
    chat_template,
    response_header,
    snapshot_tokens,
)

__all__ = [
    "ChatTemplate",
    "Entry",
    "Filter",
    "Outline",
    "SnapshotTokens",
    "TemplateError",
    "chat_template",
    "memory_keys",
    "response_header",
    "snapshot_tokens",
]
