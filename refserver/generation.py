"""Sampling completions from the model, deterministically for a given seed."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .model import LanguageModel


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1: no limit
    seed: int = 0
    stop: tuple[str, ...] = ()
    logprobs: int | None = None  # how many most likely tokens to report per step


@dataclass
class Completion:
    token_ids: list[int] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)  # the text each token added
    finish_reason: str = "length"
    token_logprobs: list[float] = field(default_factory=list)
    top_logprobs: list[dict[str, float]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def generate(model: LanguageModel, prompt_ids: list[int], params: SamplingParams) -> Completion:
    """Sample up to max_tokens tokens. Stops at <|im_end|> (kept in token_ids, not in
    the text) or where a stop string appears (the text ends before it)."""
    tokenizer = model.tokenizer
    rng = np.random.default_rng(params.seed)
    history = np.empty(len(prompt_ids) + params.max_tokens, np.int64)
    history[: len(prompt_ids)] = prompt_ids
    n = len(prompt_ids)
    decoder = tokenizer.incremental_decoder()
    out = Completion()
    text = ""
    ends: list[int] = []  # the length of the text after each token
    cut: int | None = None
    for _ in range(params.max_tokens):
        logp = model.next_token_logprobs(history[:n])
        token = _sample(logp, params, rng)
        history[n] = token
        n += 1
        out.token_ids.append(token)
        if params.logprobs is not None:
            out.token_logprobs.append(float(logp[token]))
            best = np.argsort(-logp, kind="stable")[: params.logprobs].tolist()
            if token not in best:
                best.append(token)
            out.top_logprobs.append({tokenizer.token_str(i): float(logp[i]) for i in best})
        if token == model.im_end_id:
            out.finish_reason = "stop"
            text += decoder.flush()
            if ends:
                ends[-1] = len(text)
            ends.append(len(text))
            break
        searched_from = max(0, len(text) - max((len(s) for s in params.stop), default=0))
        text += decoder.feed([token])
        ends.append(len(text))
        cut = _find_stop(text, params.stop, searched_from)
        if cut is not None:
            out.finish_reason = "stop"
            break
    else:
        text += decoder.flush()
        if ends:
            ends[-1] = len(text)
    if cut is not None:
        text = text[:cut]
    starts = [0] + ends[:-1]
    out.pieces = [text[min(a, len(text)) : min(b, len(text))] for a, b in zip(starts, ends)]
    return out


def _find_stop(text: str, stops: tuple[str, ...], start: int) -> int | None:
    found = [i for i in (text.find(s, start) for s in stops if s) if i >= 0]
    return min(found) if found else None


def _sample(logp: np.ndarray, params: SamplingParams, rng: np.random.Generator) -> int:
    if params.temperature == 0:
        return int(np.argmax(logp))
    # Most probable first, ties by id, so the order (and the draw) is reproducible.
    order = np.argsort(-logp, kind="stable")
    if params.top_k > 0:
        order = order[: params.top_k]
    weights = np.exp((logp[order] - logp[order[0]]) / params.temperature)
    if params.top_p < 1.0:
        cumulative = np.cumsum(weights) / weights.sum()
        keep = int(np.searchsorted(cumulative, params.top_p)) + 1
        order, weights = order[:keep], weights[:keep]
    cumulative = np.cumsum(weights)
    pick = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
    return int(order[min(pick, len(order) - 1)])
