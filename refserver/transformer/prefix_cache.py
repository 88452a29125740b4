"""A KV prefix cache: the keys, values and final hidden states of recent prompts,
least recently used first out, bounded in bytes.

A new prompt reuses the entry that shares the longest prefix with it: the model
then computes only the tokens after that prefix. Leave-one-out variants of one
context share everything before the removed memory with the full context, so each
variant computes only what follows the memory. Hidden states are kept beside the
keys and values so that a log-probability inside the reused prefix needs only the
LM head. Counters say how many tokens were computed and how many were served from
the cache, in total and per request (a request reads its own thread's counts)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Entry:
    ids: np.ndarray  # int64 token ids
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [1, heads, len, dim]
    hidden: torch.Tensor  # [len, hidden] after the final norm

    @property
    def nbytes(self) -> int:
        tensors = [t for pair in self.kv for t in pair] + [self.hidden]
        return sum(t.numel() * t.element_size() for t in tensors) + self.ids.nbytes


@dataclass
class Usage:
    computed: int = 0
    cached: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"computed_tokens": self.computed, "cached_tokens": self.cached}


@dataclass
class Totals:
    """Since start-up, across every model the server has served (training replaces it)."""

    computed: int = 0
    cached: int = 0
    hits: int = 0
    lookups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def as_dict(self) -> dict[str, int]:
        return {
            "tokens_computed": self.computed,
            "tokens_cached": self.cached,
            "lookups": self.lookups,
            "hits": self.hits,
        }


def shared_prefix(a: np.ndarray, b: np.ndarray) -> int:
    n = min(len(a), len(b))
    differ = np.flatnonzero(a[:n] != b[:n])
    return int(differ[0]) if len(differ) else n


class PrefixCache:
    def __init__(self, max_bytes: int, totals: Totals):
        self.max_bytes = max_bytes
        self.totals = totals
        self._entries: OrderedDict[int, Entry] = OrderedDict()
        self._next_key = 0
        self._bytes = 0
        self._local = threading.local()

    def longest(self, ids: np.ndarray) -> tuple[Entry | None, int]:
        """The entry sharing the longest prefix with ``ids``, and that length."""
        best, best_len, best_key = None, 0, None
        for key, entry in self._entries.items():
            n = shared_prefix(entry.ids, ids)
            if n > best_len:
                best, best_len, best_key = entry, n, key
        if best_key is not None:
            self._entries.move_to_end(best_key)
        return best, best_len

    def store(self, entry: Entry) -> None:
        if self.max_bytes <= 0:
            return
        size = entry.nbytes
        if size > self.max_bytes:
            return
        # An entry whose ids are a prefix of the new one's is now redundant.
        for key in [k for k, e in self._entries.items() if shared_prefix(e.ids, entry.ids) == len(e.ids)]:
            self._bytes -= self._entries.pop(key).nbytes
        while self._entries and self._bytes + size > self.max_bytes:
            _, old = self._entries.popitem(last=False)
            self._bytes -= old.nbytes
        self._entries[self._next_key] = entry
        self._next_key += 1
        self._bytes += size

    def count(self, computed: int, cached: int) -> None:
        usage = self.usage()
        usage.computed += computed
        usage.cached += cached
        with self.totals.lock:
            self.totals.computed += computed
            self.totals.cached += cached
            self.totals.lookups += 1
            self.totals.hits += cached > 0

    def usage(self) -> Usage:
        """This thread's counts since ``take_usage``."""
        if not hasattr(self._local, "usage"):
            self._local.usage = Usage()
        return self._local.usage

    def take_usage(self) -> Usage:
        usage = self.usage()
        self._local.usage = Usage()
        return usage

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
