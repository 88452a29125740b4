"""Assistant response spans and their totals, shared by both engines: a response is
the span after ``<|im_start|>assistant\\n`` through the next ``<|im_end|>`` (or the
end of the prompt)."""

from __future__ import annotations

from typing import Any

import numpy as np


def assistant_header(tokenizer: Any) -> list[int]:
    return [tokenizer.im_start_id] + tokenizer.encode("assistant\n")


def response_spans(ids: np.ndarray, header: list[int], im_end_id: int) -> list[tuple[int, int]]:
    """[start, end) of every assistant response."""
    ids = np.asarray(ids, np.int64)
    h = len(header)
    if len(ids) < h:
        return []
    match = np.ones(len(ids) - h + 1, bool)
    for j, token in enumerate(header):
        match &= ids[j : len(ids) - h + 1 + j] == token
    starts = np.flatnonzero(match) + h
    ends_at = np.flatnonzero(ids == im_end_id)
    k = np.searchsorted(ends_at, starts)
    ends = np.where(k < len(ends_at), ends_at[np.minimum(k, len(ends_at) - 1)] + 1, len(ids))
    return list(zip(starts.tolist(), ends.tolist()))


def span_totals(model: Any, ids: np.ndarray, start: int = 0) -> list[tuple[float, int]]:
    """(total log-probability, token count) of each response that begins at or after
    ``start`` (as the n-gram model's ``score``): log-probabilities are computed at
    those responses' positions only. A response across ``start`` is a ValueError."""
    spans = model.response_spans(ids)
    for a, b in spans:
        if a < start < b:
            raise ValueError(f"logprob_start {start} falls inside the response at [{a}, {b})")
    spans = [(a, b) for a, b in spans if a >= start]
    if not spans:
        return []
    covered = np.zeros(len(ids) + 1, np.int64)
    for a, b in spans:
        covered[a] += 1
        covered[b] -= 1
    positions = np.flatnonzero(np.cumsum(covered[:-1]) > 0)
    logp = np.zeros(len(ids))
    logp[positions] = model.token_logprobs(ids, positions)
    running = np.concatenate([[0.0], np.cumsum(logp)])
    return [(float(running[b] - running[a]), b - a) for a, b in spans]
