"""Interpolated Kneser-Ney n-gram probabilities, vectorised with numpy.

An n-gram (a_1, ..., a_n) is stored as one int64 key, sum(a_i * B**(n-i)), with
base B = vocab_size + 1; the extra id is the beginning-of-text padding. Keys sort so
that every n-gram sharing a context is contiguous, its context is ``key // B`` and
its (k)-suffix is ``key % B**k``. Lookups are np.searchsorted in sorted key arrays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

ORDER = 4
_SORT_QUERIES_ABOVE = 4096


@dataclass(frozen=True)
class _Table:
    """Statistics of one order k >= 2: counts of k-grams and of their contexts."""

    gram_keys: np.ndarray  # sorted int64
    gram_counts: np.ndarray  # raw counts at the highest order, continuation counts below
    context_keys: np.ndarray  # sorted int64
    context_totals: np.ndarray  # sum of gram_counts sharing the context
    context_types: np.ndarray  # number of distinct k-grams sharing the context
    discount: float

    def lookup(self, grams: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(count of the k-gram, total and types of its context), 0 where unseen."""
        index, found = _find(self.gram_keys, grams)
        count = np.where(found, self.gram_counts[index], 0.0)
        index, found = _find(self.context_keys, grams // base)
        return count, np.where(found, self.context_totals[index], 0.0), np.where(found, self.context_types[index], 0.0)


def ngram_keys(tokens: np.ndarray, first_target: int, base: int, order: int = ORDER) -> np.ndarray:
    """Keys of the order-n n-grams ending at each position from ``first_target`` on,
    with the history before the start of ``tokens`` padded with the padding id."""
    bos = base - 1
    padded = np.concatenate([np.full(order - 1, bos, np.int64), np.asarray(tokens, np.int64)])
    n_targets = len(tokens) - first_target
    keys = np.zeros(max(n_targets, 0), np.int64)
    for j in range(order):
        start = first_target + j
        keys = keys * base + padded[start : start + n_targets]
    return keys


class KneserNey:
    def __init__(self, vocab_size: int, occurrences: Iterable[np.ndarray], order: int = ORDER):
        """``occurrences``: arrays of highest-order n-gram keys, one per occurrence."""
        self.vocab_size = vocab_size
        self.order = order
        self.base = vocab_size + 1
        self.bos = vocab_size
        if self.base ** order >= 2**63:
            raise ValueError(f"vocabulary of {vocab_size} is too large for int64 {order}-gram keys")
        keys, counts = np.unique(np.concatenate(list(occurrences)), return_counts=True)
        grams: dict[int, tuple[np.ndarray, np.ndarray]] = {order: (keys, counts.astype(np.float64))}
        # Below the top order a k-gram counts the distinct words seen before it
        # (its continuation count): the k-suffixes of the (k+1)-gram types.
        for k in range(order - 1, 0, -1):
            suffixes, n_left = np.unique(grams[k + 1][0] % self.base**k, return_counts=True)
            grams[k] = (suffixes, n_left.astype(np.float64))

        unigrams, continuation = grams[1]
        d1 = _discount(continuation)
        total = continuation.sum()
        dense = np.zeros(vocab_size, np.float64)
        dense[unigrams] = np.maximum(continuation - d1, 0.0)
        # The discounted mass goes to a uniform floor, so tokens never seen (byte
        # fallbacks, anything) keep a non-zero probability.
        self.unigram_probs = (dense + d1 * len(unigrams) / vocab_size) / total
        self.tables = {k: _make_table(*grams[k], self.base) for k in range(2, order + 1)}

    def context_keys(self, history: np.ndarray) -> list[np.ndarray]:
        """Context keys of orders 2..N for positions whose histories are the rows of
        ``history`` (shape (Q, N-1), oldest first, padded where the text begins)."""
        keys, key = [], np.zeros(len(history), np.int64)
        for k in range(2, self.order + 1):
            # Each order adds one older token as the new most significant digit.
            key = key + history[:, self.order - k] * self.base ** (k - 2)
            keys.append(key)
        return keys

    def probs(self, context_keys: list[np.ndarray], targets: np.ndarray) -> np.ndarray:
        """P(target | context) for each query; context keys broadcast against targets."""
        p = self.unigram_probs[targets]
        for k, context in zip(range(2, self.order + 1), context_keys):
            table = self.tables[k]
            grams = np.broadcast_to(context * self.base + targets, p.shape)
            if len(grams) > _SORT_QUERIES_ABOVE:
                # Binary search is several times faster on sorted queries (each starts
                # from the previous answer, in cache), which more than pays for the sort.
                order = np.argsort(grams)
                count, total, types = (_unsort(a, order) for a in table.lookup(grams[order], self.base))
            else:
                count, total, types = table.lookup(grams, self.base)
            d = table.discount
            seen = total > 0
            # An unseen context passes the lower order through unchanged.
            p = np.where(seen, (np.maximum(count - d, 0.0) + d * types * p) / np.where(seen, total, 1.0), p)
        return p

    def context_stats(self, context_keys: list[np.ndarray]) -> list[tuple[np.ndarray, ...]]:
        """For many contexts at once, per order 2..N: (seen, weight kept for the lower
        orders, 1 / total, first and end index of the context's k-grams)."""
        stats = []
        for k, context in zip(range(2, self.order + 1), context_keys):
            table = self.tables[k]
            index, seen = _find(table.context_keys, context)
            total = np.where(seen, table.context_totals[index], 1.0)
            weight = np.where(seen, table.discount * table.context_types[index] / total, 1.0)
            lo = np.searchsorted(table.gram_keys, context * self.base)
            hi = np.searchsorted(table.gram_keys, (context + 1) * self.base)
            stats.append((seen, weight, 1.0 / total, lo, hi))
        return stats

    def sparse_distribution(
        self, stats: list[tuple[np.ndarray, ...]], q: int
    ) -> tuple[float, list[tuple[np.ndarray, np.ndarray]]]:
        """P(w | context q of ``stats``) for every w, as ``scale * unigram_probs`` plus,
        per order, the discounted counts of the few words seen after the context: the
        interpolation of ``probs``, unrolled, so a whole distribution costs one pass
        over the vocabulary (each order's indices are distinct)."""
        scale, parts = 1.0, []
        for k, (seen, weight, inverse_total, lo, hi) in zip(range(2, self.order + 1), stats):
            if not seen[q]:
                continue  # an unseen context passes the lower order through unchanged
            table = self.tables[k]
            w = weight[q]
            scale *= w
            parts = [(i, vals * w) for i, vals in parts]
            grams = slice(lo[q], hi[q])
            counts = np.maximum(table.gram_counts[grams] - table.discount, 0.0) * inverse_total[q]
            parts.append((table.gram_keys[grams] % self.base, counts))
        return scale, parts


def _make_table(gram_keys: np.ndarray, gram_counts: np.ndarray, base: int) -> _Table:
    contexts = gram_keys // base
    context_keys, starts = np.unique(contexts, return_index=True)
    return _Table(
        gram_keys=gram_keys,
        gram_counts=gram_counts,
        context_keys=context_keys,
        context_totals=np.add.reduceat(gram_counts, starts),
        context_types=np.diff(np.append(starts, len(gram_keys))).astype(np.float64),
        discount=_discount(gram_counts),
    )


def _discount(counts: np.ndarray) -> float:
    """Ney's estimate D = n1 / (n1 + 2 n2) from the counts of counts."""
    n1 = float(np.count_nonzero(counts == 1))
    n2 = float(np.count_nonzero(counts == 2))
    if n1 == 0 or n2 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def _unsort(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out


def _find(sorted_keys: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of each query in ``sorted_keys`` (clipped to be valid) and whether it is there."""
    if len(sorted_keys) == 0:
        return np.zeros(np.shape(queries), np.int64), np.zeros(np.shape(queries), bool)
    index = np.minimum(np.searchsorted(sorted_keys, queries), len(sorted_keys) - 1)
    return index, sorted_keys[index] == queries
