"""Per-position prompt log-probabilities, as the vLLM and SGLang surfaces report
them. Every value comes from the same ``LanguageModel.token_logprobs`` that
``/v1/score`` sums, so a span summed from any surface equals its ``/v1/score``
total (to float rounding). Ranks and top-k alternatives need the whole next-token
distribution at each position; they are computed only when a request asks for
vLLM's shapes, position by position (``LanguageModel.distributions``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .model import LanguageModel

# vLLM's JSON stand-in for -inf (clamp_prompt_logprobs in vllm/entrypoints/generate/
# base/serving.py and _create_completion_logprobs in completion/serving.py).
VLLM_NEG_INF = -9999.0


@dataclass(frozen=True)
class PositionDetail:
    """At one prompt position: the actual token's rank (1 = most likely) and the
    ``k`` most likely tokens as (id, log-probability, rank)."""

    rank: int
    top: list[tuple[int, float, int]]


def prompt_token_logprobs(
    model: LanguageModel, ids: Sequence[int], start: int = 0, *, neg_inf: bool = False
) -> np.ndarray:
    """log P(ids[t] | ids[:t]) for t in [start, len(ids)). ``neg_inf`` (a fault)
    makes the last one -inf, as a real model gives for an impossible token."""
    ids = np.asarray(ids, np.int64)
    positions = np.arange(start, len(ids))
    values = model.token_logprobs(ids, positions) if len(positions) else np.zeros(0)
    if neg_inf and len(values):
        values[-1] = -np.inf
    return values


def position_details(
    model: LanguageModel, ids: Sequence[int], positions: Sequence[int], k: int
) -> list[PositionDetail]:
    """Rank of the actual token and the top ``k`` (-1: the whole vocabulary) at each
    position. Costs one full next-token distribution per position."""
    ids = np.asarray(ids, np.int64)
    k = model.vocab_size if k < 0 else min(k, model.vocab_size)
    details = []
    for t, dist in zip(positions, model.distributions(ids, positions)):
        rank = 1 + int(np.count_nonzero(dist > dist[ids[t]]))
        best = _top(dist, k)
        details.append(PositionDetail(rank, [(int(i), float(dist[i]), r + 1) for r, i in enumerate(best)]))
    return details


def _top(dist: np.ndarray, k: int) -> np.ndarray:
    """The k most likely ids, most likely first."""
    if k == 0:
        return np.zeros(0, np.int64)
    if k < len(dist):
        candidates = np.sort(np.argpartition(-dist, k - 1)[:k])
        return candidates[np.argsort(-dist[candidates], kind="stable")]
    return np.argsort(-dist, kind="stable")


def clamp(logprob: float) -> float:
    """vLLM's JSON for a log-probability: -inf becomes -9999.0."""
    return max(float(logprob), VLLM_NEG_INF)
