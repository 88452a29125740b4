"""Request bodies turned into what the model takes: a completion's prompt ids and
sampling parameters, a training job's samples. Each failure names the field
(the checks on single values are in validation.py)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import validation as v
from .generation import SamplingParams
from .model import Sample
from .tokenizer import Tokenizer

MAX_STOP_STRINGS = 16
# As vLLM's VLLM_MAX_COMPLETION_PROMPTS: prompts in one batched request.
MAX_PROMPTS = 1024


def check_prompt_length(n_tokens: int, limit: int, name: str = "prompt") -> None:
    if n_tokens > limit:
        raise v.BadRequest(f"{name} has {n_tokens} tokens, more than the maximum of {limit}")


@dataclass(frozen=True)
class CompletionOptions:
    """What a completion request asks for besides sampling (vLLM's extensions)."""

    echo: bool = False
    prompt_logprobs: int | None = None  # -1: the whole vocabulary
    return_token_ids: bool = False
    priority: int = 0
    stream: bool = False


def completion_request(
    body: dict[str, Any], tokenizer: Tokenizer, limit: int, default_seed: int
) -> tuple[list[list[int]], SamplingParams, CompletionOptions]:
    """The prompts' ids (each at most ``limit``, with room for max_tokens), how to
    sample, and the rest of what was asked."""
    prompts = _prompts(body.get("prompt"), tokenizer)
    for i, ids in enumerate(prompts):
        check_prompt_length(len(ids), limit, f"prompt[{i}]" if len(prompts) > 1 else "prompt")
    vocab = tokenizer.vocab_size

    def get(name: str, check: Callable[[Any], Any], default: Any) -> Any:
        value = body.get(name)
        return default if value is None else check(value)

    options = CompletionOptions(
        echo=get("echo", lambda x: v.boolean(x, "echo"), False),
        prompt_logprobs=get("prompt_logprobs", lambda x: v.integer(x, "prompt_logprobs", -1, vocab), None),
        return_token_ids=get("return_token_ids", lambda x: v.boolean(x, "return_token_ids"), False),
        priority=get("priority", lambda x: v.integer(x, "priority"), 0),
        stream=get("stream", lambda x: v.boolean(x, "stream"), False),
    )
    # vLLM generates nothing for max_tokens 0 only when echoing the prompt.
    max_tokens = get("max_tokens", lambda x: v.integer(x, "max_tokens", 0 if options.echo else 1, limit), 16)
    longest = max(len(ids) for ids in prompts)
    if longest + max_tokens > limit:
        raise v.BadRequest(
            f"prompt ({longest} tokens) plus max_tokens ({max_tokens}) exceeds the maximum model length of {limit}"
        )
    if options.stream and (options.echo or (options.prompt_logprobs or 0) != 0):
        raise v.BadRequest("`prompt_logprobs` and `echo` are not available when `stream=True`")
    get("n", lambda x: v.integer(x, "n", 1, 1), 1)
    return (
        prompts,
        SamplingParams(
            max_tokens=max_tokens,
            temperature=get("temperature", lambda x: v.number(x, "temperature", 0.0, 100.0), 1.0),
            top_p=get("top_p", lambda x: v.number(x, "top_p", 1e-9, 1.0), 1.0),
            top_k=get("top_k", lambda x: v.integer(x, "top_k", -1, vocab), 0),
            seed=get("seed", lambda x: v.integer(x, "seed", -(2**63), 2**64 - 1) % 2**64, default_seed),
            stop=get("stop", _stop_strings, ()),
            logprobs=get("logprobs", lambda x: v.integer(x, "logprobs", 0, vocab), None),
        ),
        options,
    )


def _prompts(prompt: Any, tokenizer: Tokenizer) -> list[list[int]]:
    """A completion's prompt or prompts, text or ids: one prompt, or (as vLLM and
    SGLang take them) a list of strings or a list of lists of ids, one choice each."""
    if isinstance(prompt, list) and prompt and all(isinstance(p, (str, list)) for p in prompt):
        if len(prompt) > MAX_PROMPTS:
            raise v.BadRequest(f"prompt: {len(prompt)} prompts in one request, more than the maximum of {MAX_PROMPTS}")
        return [_one_prompt(p, tokenizer, f"prompt[{i}]") for i, p in enumerate(prompt)]
    return [_one_prompt(prompt, tokenizer, "prompt")]


def _one_prompt(prompt: Any, tokenizer: Tokenizer, name: str) -> list[int]:
    if isinstance(prompt, str):
        if not prompt:
            raise v.BadRequest(f"{name} is empty")
        return tokenizer.encode(prompt)
    if isinstance(prompt, list):
        return v.token_ids(prompt, name, tokenizer.vocab_size).tolist()
    raise v.BadRequest(f"{name}: expected a string or a list of token ids")


def _stop_strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or len(value) > MAX_STOP_STRINGS or not all(isinstance(s, str) and s for s in value):
        raise v.BadRequest(f"stop: expected a non-empty string or a list of at most {MAX_STOP_STRINGS} of them")
    return tuple(value)


def training_samples(
    body: dict[str, Any], vocab_size: int, max_tokens: int | None = None
) -> tuple[list[Sample], str, int]:
    """A /train body's samples, a hash of their ids that tells a replay with the
    same Idempotency-Key from a reuse of the key with other samples, and how many
    samples had their context cut from the left so that context and continuation
    fit ``max_tokens`` (None: the n-gram engine, which keeps only the context's tail)."""
    data = body.get("training_data")
    if not isinstance(data, dict):
        raise v.BadRequest("training_data: expected an object with a 'samples' list")
    items = data.get("samples")
    if not isinstance(items, list) or not items:
        raise v.BadRequest("training_data.samples: expected a non-empty list of samples")
    samples, digest, truncated = [], hashlib.sha256(), 0
    for i, item in enumerate(items):
        where = f"training_data.samples[{i}]"
        if not isinstance(item, dict):
            raise v.BadRequest(f"{where}: expected an object with context_ids and continuation_ids")
        context = v.token_ids(item.get("context_ids"), f"{where}.context_ids", vocab_size, allow_empty=True)
        continuation = v.token_ids(item.get("continuation_ids"), f"{where}.continuation_ids", vocab_size)
        for ids in (context, continuation):
            digest.update(len(ids).to_bytes(8, "little"))
            digest.update(ids.tobytes())
        if max_tokens is None:
            samples.append(Sample.from_ids(context.tolist(), continuation.tolist()))
            continue
        if len(continuation) >= max_tokens:
            raise v.BadRequest(
                f"{where}.continuation_ids: {len(continuation)} tokens; a sample holds at most {max_tokens} "
                "(the server's --train-max-tokens) with at least one token of context"
            )
        keep = max_tokens - len(continuation)
        truncated += len(context) > keep
        samples.append(Sample(tuple(context[-keep:].tolist()), tuple(continuation.tolist())))
    return samples, digest.hexdigest(), truncated
