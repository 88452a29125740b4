"""The log-probability blocks of an OpenAI-style completion choice, shaped as vLLM
shapes them (read in vllm/entrypoints/openai/completion/serving.py at commit
030ea52effcb: request_output_to_completion_response, _create_completion_logprobs;
and clamp_prompt_logprobs in vllm/entrypoints/generate/base/serving.py):

- ``prompt_logprobs``: one entry per prompt position, ``null`` at position 0, else a
  dict keyed by the token id **as a string** (JSON object keys), the actual token
  first and then the top ``prompt_logprobs`` tokens, each
  ``{"logprob", "rank", "decoded_token"}``; -inf is clamped to -9999.0.
- ``logprobs`` with ``echo``: ``tokens``, ``token_logprobs``, ``top_logprobs`` and
  ``text_offset`` run over the prompt and then the generated tokens; the prompt's
  first entry has ``null`` log-probability and ``null`` top_logprobs; each
  ``top_logprobs`` dict holds the actual token and then the top ``logprobs``,
  keyed by decoded text; ``text_offset`` adds up the decoded tokens' lengths.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .generation import Completion
from .logprobs import PositionDetail, clamp
from .tokenizer import Tokenizer


def _step(tokenizer: Tokenizer, token: int, logprob: float, detail: PositionDetail) -> list[tuple[int, float, int]]:
    """(id, logprob, rank) of the actual token, then the top tokens not already listed."""
    rank = tokenizer.vocab_size if np.isneginf(logprob) else detail.rank
    return [(token, logprob, rank)] + [entry for entry in detail.top if entry[0] != token]


def vllm_prompt_logprobs(
    tokenizer: Tokenizer, ids: Sequence[int], logprobs: np.ndarray, details: Sequence[PositionDetail]
) -> list[dict[str, Any] | None]:
    """``choices[i].prompt_logprobs``; ``logprobs`` and ``details`` cover positions 1..n-1."""
    out: list[dict[str, Any] | None] = [None]
    for token, logprob, detail in zip(ids[1:], logprobs, details):
        out.append(
            {
                str(i): {"logprob": clamp(lp), "rank": rank, "decoded_token": tokenizer.token_str(i)}
                for i, lp, rank in _step(tokenizer, int(token), float(logprob), detail)
            }
        )
    return out


def echo_logprobs(
    tokenizer: Tokenizer,
    ids: Sequence[int],
    logprobs: np.ndarray,
    details: Sequence[PositionDetail],
    result: Completion,
) -> dict[str, Any]:
    """The ``logprobs`` block of an ``echo`` request: the prompt's tokens, then the generated ones."""
    tokens = [tokenizer.token_str(int(ids[0]))] if len(ids) else []
    token_logprobs: list[float | None] = [None] if len(ids) else []
    top_logprobs: list[dict[str, float] | None] = [None] if len(ids) else []
    for token, logprob, detail in zip(ids[1:], logprobs, details):
        tokens.append(tokenizer.token_str(int(token)))
        token_logprobs.append(clamp(logprob))
        step = _step(tokenizer, int(token), float(logprob), detail)
        top_logprobs.append({tokenizer.token_str(i): clamp(lp) for i, lp, _ in step})
    for i, token in enumerate(result.token_ids):
        tokens.append(tokenizer.token_str(token))
        token_logprobs.append(clamp(result.token_logprobs[i]))
        top_logprobs.append({key: clamp(lp) for key, lp in result.top_logprobs[i].items()})
    offsets = np.cumsum([0] + [len(t) for t in tokens[:-1]]).tolist() if tokens else []
    return {"text_offset": offsets, "token_logprobs": token_logprobs, "tokens": tokens, "top_logprobs": top_logprobs}
