"""The reference language model: Kneser-Ney n-grams mixed with a cache of the prompt.

    P(w | h) = l3 Pc3(w | last 2) + (1 - l3) [l2 Pc2(w | last 1) + (1 - l2) [l1 Pc1(w) + (1 - l1) P_KN(w | last 3)]]

The caches Pc are relative frequencies over the prompt so far: how often w
followed the same two tokens, the same token, or occurred at all. A cache's
weight is Witten-Bell's n / (n + u), n being how often its context occurred
before and u how many different tokens followed it, scaled by a bound: a context
always followed by the same token is trusted, one followed by anything is not.
The weights depend only on the history, never on w, so the mixture is a
normalised distribution at every position. The cache is what makes a response
that repeats facts from a memory much more probable when the memory is in the
context, as it is for a real model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from . import spans
from .corpus import load_documents
from .ngram import ORDER, KneserNey, ngram_keys
from .tokenizer import Tokenizer

# Bounds of the cache weights: a repeated phrase can become near certain, but the
# n-gram model always keeps a share for what the prompt has not shown yet.
CACHE_TRIGRAM_WEIGHT = 0.9
CACHE_BIGRAM_WEIGHT = 0.1
CACHE_UNIGRAM_WEIGHT = 0.02


@dataclass(frozen=True)
class Sample:
    """One training example: only the last ORDER-1 tokens of the context matter to
    an n-gram model, so that is all that is kept."""

    context_tail: tuple[int, ...]
    continuation: tuple[int, ...]

    @classmethod
    def from_ids(cls, context_ids: Sequence[int], continuation_ids: Sequence[int]) -> Sample:
        return cls(tuple(context_ids[max(len(context_ids) - (ORDER - 1), 0) :]), tuple(continuation_ids))


class LanguageModel:
    def __init__(self, tokenizer: Tokenizer, ngrams: KneserNey):
        self.tokenizer = tokenizer
        self.ngrams = ngrams
        self.vocab_size = tokenizer.vocab_size
        self.im_start_id = tokenizer.im_start_id
        self.im_end_id = tokenizer.im_end_id
        self.assistant_header = [tokenizer.im_start_id] + tokenizer.encode("assistant\n")

    # ---- scoring -------------------------------------------------------------

    def token_logprobs(self, ids: np.ndarray, positions: np.ndarray | None = None) -> np.ndarray:
        """log P(ids[t] | ids[:t]) for each t in ``positions`` (default: all)."""
        ids = np.asarray(ids, np.int64)
        if positions is None:
            positions = np.arange(len(ids))
        base = self.ngrams.base
        n = len(ids)
        # The unigram, bigram and trigram ending at each position; positions too
        # early to have one get unique keys above any real one, which never match.
        sentinel = base**3 + np.arange(n, dtype=np.int64)
        bigram = sentinel.copy()
        bigram[1:] = ids[:-1] * base + ids[1:]
        trigram = sentinel.copy()
        trigram[2:] = bigram[1:-1] * base + ids[2:]
        t = np.asarray(positions, np.int64)
        prev = np.maximum(t - 1, 0)
        has1, has2 = t >= 1, t >= 2
        # The context of position t is what ends at t - 1: its earlier occurrences
        # and the distinct tokens that followed them. Counted at these positions
        # only: one sort per order, then binary searches (_Occurrences).
        grams3, grams2, grams1 = _Occurrences(trigram), _Occurrences(bigram), _Occurrences(ids)
        # A key seen for the first time adds one distinct follower to its context.
        context2, distinct2 = grams1.counts(prev, grams2.new_next())
        context3, distinct3 = grams2.counts(prev, grams3.new_next())
        caches = _mix_caches(
            history_len=t,
            count1=grams1.counts(t)[0],
            context2=np.where(has1, context2, 0),
            distinct2=np.where(has1, distinct2, 0),
            count2=grams2.counts(t)[0],
            context3=np.where(has2, context3, 0),
            distinct3=np.where(has2, distinct3, 0),
            count3=grams3.counts(t)[0],
        )
        padded = np.concatenate([np.full(ORDER - 1, self.ngrams.bos, np.int64), ids])
        history = np.stack([padded[t + j] for j in range(ORDER - 1)], axis=1)
        p_kn = self.ngrams.probs(self.ngrams.context_keys(history), ids[t])
        return np.log(caches.kn_weight * p_kn + caches.cache_prob)

    def response_spans(self, ids: np.ndarray) -> list[tuple[int, int]]:
        """[start, end) of every assistant response (spans.response_spans)."""
        return spans.response_spans(ids, self.assistant_header, self.im_end_id)

    def score(self, ids: Sequence[int] | np.ndarray, start: int = 0) -> list[tuple[float, int]]:
        """(total log-probability, token count) of each assistant response that
        begins at or after ``start`` (spans.span_totals)."""
        return spans.span_totals(self, np.asarray(ids, np.int64), start)

    # ---- the full next-token distribution (generation, logprobs) -------------

    def next_token_logprobs(self, history: np.ndarray) -> np.ndarray:
        """log P(w | history) for every w in the vocabulary."""
        h = np.asarray(history, np.int64)
        vocab = self.vocab_size
        n = len(h)
        count1 = np.bincount(h, minlength=vocab)
        after1 = h[1:][h[:-1] == h[-1]] if n >= 1 else h[:0]
        after2 = h[2:][(h[:-2] == h[-2]) & (h[1:-1] == h[-1])] if n >= 2 else h[:0]
        count2 = np.bincount(after1, minlength=vocab)
        count3 = np.bincount(after2, minlength=vocab)
        caches = _mix_caches(
            history_len=np.int64(n),
            count1=count1,
            context2=np.int64(len(after1)),
            distinct2=np.int64(np.count_nonzero(count2)),
            count2=count2,
            context3=np.int64(len(after2)),
            distinct3=np.int64(np.count_nonzero(count3)),
            count3=count3,
        )
        tail = np.concatenate([np.full(ORDER - 1, self.ngrams.bos, np.int64), h])[-(ORDER - 1) :]
        p_kn = self.ngrams.probs(self.ngrams.context_keys(tail[None, :]), np.arange(vocab))
        return np.log(caches.kn_weight * p_kn + caches.cache_prob)

    def distributions(self, ids: np.ndarray, positions: Iterable[int]) -> Iterator[np.ndarray]:
        """log P(w | ids[:t]) for every w, at each t of ``positions`` (ascending), as
        ``next_token_logprobs`` gives them (to float rounding); the cache counts are
        kept as the history grows, so a whole prompt costs O(n * vocabulary)."""
        positions = list(positions)
        array = np.asarray(ids, np.int64)
        padded = np.concatenate([np.full(ORDER - 1, self.ngrams.bos, np.int64), array])
        t = np.asarray(positions, np.int64)
        history = np.stack([padded[t + j] for j in range(ORDER - 1)], axis=1).reshape(len(t), ORDER - 1)
        stats = self.ngrams.context_stats(self.ngrams.context_keys(history))
        ids = array.tolist()
        count1 = np.zeros(self.vocab_size, np.float64)
        after1: dict[int, dict[int, int]] = {}
        after2: dict[tuple[int, int], dict[int, int]] = {}
        done = 0  # the history counted so far is ids[:done]
        for q, t in enumerate(positions):
            for j in range(done, t):  # add token j, and the n-grams it ends
                count1[ids[j]] += 1
                if j >= 1:
                    followers = after1.setdefault(ids[j - 1], {})
                    followers[ids[j]] = followers.get(ids[j], 0) + 1
                if j >= 2:
                    followers = after2.setdefault((ids[j - 2], ids[j - 1]), {})
                    followers[ids[j]] = followers.get(ids[j], 0) + 1
            done = max(done, t)
            seen1 = after1.get(ids[t - 1], {}) if t >= 1 else {}
            seen2 = after2.get((ids[t - 2], ids[t - 1]), {}) if t >= 2 else {}
            yield np.log(self._mixture(t, count1, seen1, seen2, self.ngrams.sparse_distribution(stats, q)))

    def _mixture(self, t: int, count1: np.ndarray, seen1: dict, seen2: dict, kn: tuple) -> np.ndarray:
        """``_mix_caches`` for one position, with the sparse parts added sparsely;
        ``kn`` is the n-gram distribution as ``sparse_distribution`` gives it."""
        c2, c3 = sum(seen1.values()), sum(seen2.values())
        l3 = CACHE_TRIGRAM_WEIGHT * c3 / max(c3 + len(seen2), 1)
        l2 = CACHE_BIGRAM_WEIGHT * c2 / max(c2 + len(seen1), 1)
        l1 = CACHE_UNIGRAM_WEIGHT if t > 0 else 0.0
        kn_weight = (1 - l3) * (1 - l2) * (1 - l1)
        scale, parts = kn
        prob = (kn_weight * scale) * self.ngrams.unigram_probs + ((1 - l3) * (1 - l2) * l1 / max(t, 1)) * count1
        for index, values in parts:
            prob[index] += kn_weight * values
        for seen, weight, total in ((seen1, (1 - l3) * l2, c2), (seen2, l3, c3)):
            if seen:
                prob[list(seen)] += weight * np.array(list(seen.values()), np.float64) / total
        return prob


@dataclass(frozen=True)
class _Caches:
    kn_weight: np.ndarray
    cache_prob: np.ndarray  # the weighted sum of the cache components


def _mix_caches(history_len, count1, context2, distinct2, count2, context3, distinct3, count3) -> _Caches:
    l3 = CACHE_TRIGRAM_WEIGHT * context3 / np.maximum(context3 + distinct3, 1)
    l2 = CACHE_BIGRAM_WEIGHT * context2 / np.maximum(context2 + distinct2, 1)
    l1 = np.where(history_len > 0, CACHE_UNIGRAM_WEIGHT, 0.0)
    w3 = l3
    w2 = (1 - l3) * l2
    w1 = (1 - l3) * (1 - l2) * l1
    cache_prob = (
        w3 * count3 / np.maximum(context3, 1)
        + w2 * count2 / np.maximum(context2, 1)
        + w1 * count1 / np.maximum(history_len, 1)
    )
    return _Caches(kn_weight=(1 - l3) * (1 - l2) * (1 - l1), cache_prob=cache_prob)


class _Occurrences:
    """The positions of ``keys`` (non-negative) sorted by key, then position:
    how many earlier positions hold the same key, at the positions asked only,
    by binary search. Key and position are packed in one int64 where they fit:
    a plain sort (SIMD-accelerated in numpy) is then stable, and several times
    faster than a stable argsort."""

    def __init__(self, keys: np.ndarray):
        n = len(keys)
        self.keys = keys
        self.shift = max(n - 1, 1).bit_length()
        index = np.arange(n, dtype=np.int64)
        if n and int(keys.max()) < 1 << (63 - self.shift):
            self.packed = np.sort((keys << self.shift) | index)
            self.order = self.packed & ((1 << self.shift) - 1)
            self.ordered = self.packed >> self.shift
        else:
            self.packed = None
            self.order = np.argsort(keys, kind="stable")
            self.ordered = keys[self.order]
            self.rank = np.empty(n, np.int64)
            self.rank[self.order] = index

    def counts(self, q: np.ndarray, flags: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        """How many positions before each of ``q`` hold its key, and how many of
        those have ``flags`` set (None without flags)."""
        key = self.keys[q]
        if self.packed is not None:
            rank = np.searchsorted(self.packed, (key << self.shift) | q)
            group = np.searchsorted(self.packed, key << self.shift)
        else:
            rank, group = self.rank[q], np.searchsorted(self.ordered, key)
        if flags is None:
            return rank - group, None
        before = np.zeros(len(self.keys) + 1, np.int64)
        np.cumsum(flags[self.order], out=before[1:])
        return rank - group, before[rank] - before[group]

    def new_next(self) -> np.ndarray:
        """For each position j: whether the key at j + 1 occurs there for the first time."""
        n = len(self.keys)
        first = np.ones(n, bool)
        first[1:] = self.ordered[1:] != self.ordered[:-1]
        at = self.order[first]
        flags = np.zeros(n, bool)
        flags[at[at > 0] - 1] = True
        return flags


class ModelBuilder:
    """Builds models from the built-in corpus plus trained samples. The corpus part
    is counted once; training adds the samples' n-grams and recounts."""

    def __init__(self, tokenizer: Tokenizer | None = None):
        documents = load_documents()
        self.tokenizer = tokenizer or Tokenizer.from_texts(documents)
        base = self.tokenizer.vocab_size + 1
        self._corpus_keys = np.concatenate(
            [ngram_keys(np.array(self.tokenizer.encode(doc)), 0, base) for doc in documents]
        )

    def build(self, samples: Sequence[Sample] = ()) -> LanguageModel:
        base = self.tokenizer.vocab_size + 1
        occurrences = [self._corpus_keys]
        for sample in samples:
            tokens = np.array(sample.context_tail + sample.continuation, np.int64)
            occurrences.append(ngram_keys(tokens, len(sample.context_tail), base))
        return LanguageModel(self.tokenizer, KneserNey(self.tokenizer.vocab_size, occurrences))
