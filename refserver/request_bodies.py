"""Request bodies turned into what the model takes: a completion's prompt ids and
sampling parameters, a training job's samples. Each failure names the field
(the checks on single values are in validation.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from . import validation as v
from .generation import SamplingParams
from .model import Sample
from .tokenizer import Tokenizer

MAX_STOP_STRINGS = 16


def check_prompt_length(n_tokens: int, limit: int) -> None:
    if n_tokens > limit:
        raise v.BadRequest(f"prompt has {n_tokens} tokens, more than the maximum of {limit}")


def completion_request(
    body: dict[str, Any], tokenizer: Tokenizer, limit: int, default_seed: int
) -> tuple[list[int], SamplingParams]:
    """The prompt's ids (at most ``limit``, with room for max_tokens) and how to sample."""
    ids = _prompt_ids(body.get("prompt"), tokenizer)
    check_prompt_length(len(ids), limit)
    vocab = tokenizer.vocab_size

    def get(name: str, check: Callable[[Any], Any], default: Any) -> Any:
        value = body.get(name)
        return default if value is None else check(value)

    max_tokens = get("max_tokens", lambda x: v.integer(x, "max_tokens", 1, limit), 16)
    if len(ids) + max_tokens > limit:
        raise v.BadRequest(
            f"prompt ({len(ids)} tokens) plus max_tokens ({max_tokens}) exceeds the maximum model length of {limit}"
        )
    get("n", lambda x: v.integer(x, "n", 1, 1), 1)
    get("priority", lambda x: v.integer(x, "priority"), 0)
    stop = get("stop", _stop_strings, ())
    return ids, SamplingParams(
        max_tokens=max_tokens,
        temperature=get("temperature", lambda x: v.number(x, "temperature", 0.0, 100.0), 1.0),
        top_p=get("top_p", lambda x: v.number(x, "top_p", 1e-9, 1.0), 1.0),
        top_k=get("top_k", lambda x: v.integer(x, "top_k", -1, vocab), 0),
        seed=get("seed", lambda x: v.integer(x, "seed", -(2**63), 2**64 - 1) % 2**64, default_seed),
        stop=stop,
        logprobs=get("logprobs", lambda x: v.integer(x, "logprobs", 0, vocab), None),
    )


def _prompt_ids(prompt: Any, tokenizer: Tokenizer) -> list[int]:
    """A completion's prompt, text or ids, as ids."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], (str, list)):
        prompt = prompt[0]  # a batch of one, as OpenAI clients sometimes send
    if isinstance(prompt, str):
        if not prompt:
            raise v.BadRequest("prompt is empty")
        return tokenizer.encode(prompt)
    if isinstance(prompt, list) and prompt and isinstance(prompt[0], (str, list)):
        raise v.BadRequest("prompt: batches of prompts are not supported; send one prompt per request")
    if isinstance(prompt, list):
        return v.token_ids(prompt, "prompt", tokenizer.vocab_size).tolist()
    raise v.BadRequest("prompt: expected a string or a list of token ids")


def _stop_strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in value):
        raise v.BadRequest(f"stop: expected a non-empty string or a list of at most {MAX_STOP_STRINGS} of them")
    return tuple(value)


def training_samples(body: dict[str, Any], vocab_size: int) -> tuple[list[Sample], str]:
    """A /train body's samples, and a hash of their ids that tells a replay with the
    same Idempotency-Key from a reuse of the key with other samples."""
    data = body.get("training_data")
    if not isinstance(data, dict):
        raise v.BadRequest("training_data: expected an object with a 'samples' list")
    items = data.get("samples")
    if not isinstance(items, list) or not items:
        raise v.BadRequest("training_data.samples: expected a non-empty list of samples")
    samples, digest = [], hashlib.sha256()
    for i, item in enumerate(items):
        where = f"training_data.samples[{i}]"
        if not isinstance(item, dict):
            raise v.BadRequest(f"{where}: expected an object with context_ids and continuation_ids")
        context = v.token_ids(item.get("context_ids"), f"{where}.context_ids", vocab_size, allow_empty=True)
        continuation = v.token_ids(item.get("continuation_ids"), f"{where}.continuation_ids", vocab_size)
        samples.append(Sample.from_ids(context.tolist(), continuation.tolist()))
        for ids in (context, continuation):
            digest.update(len(ids).to_bytes(8, "little"))
            digest.update(ids.tobytes())
    return samples, digest.hexdigest()
