"""SGLang's GenerateReqInput body (python/sglang/srt/managers/io_struct.py, read at
commit 001067fffe33) turned into prompts and sampling parameters. Per-prompt fields
(``sampling_params``, ``return_logprob``, ``logprob_start_len``,
``top_logprobs_num``) take one value for all prompts or a list with one per prompt.
``logprob_start_len`` -1 (the default) means the last prompt token only, as SGLang."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .. import validation as v
from ..config import ServerConfig
from ..generation import SamplingParams
from ..request_bodies import MAX_PROMPTS
from ..tokenizer import Tokenizer


@dataclass(frozen=True)
class GenerateRequest:
    prompts: list[list[int]]
    batched: bool
    sampling: list[SamplingParams]
    return_logprob: list[bool]
    logprob_start_len: list[int]
    top_logprobs_num: list[int]
    return_text_in_logprobs: bool
    rid: str


def generate_request(body: dict[str, Any], tokenizer: Tokenizer, config: ServerConfig) -> GenerateRequest:
    prompts, batched = _prompts(body, tokenizer)
    limit = config.max_prompt_tokens
    for ids in prompts:
        if len(ids) >= limit:
            raise v.BadRequest(
                f"The input ({len(ids)} tokens) is longer than the model's context length ({limit} tokens)."
            )
    n = len(prompts)
    vocab = tokenizer.vocab_size
    sampling = [
        _sampling(p, f"sampling_params[{i}]" if batched else "sampling_params", vocab, config.seed)
        for i, p in enumerate(_per_prompt(body.get("sampling_params"), n, "sampling_params", dict, {}))
    ]
    for ids, params in zip(prompts, sampling):
        if len(ids) + params.max_tokens > limit:
            raise v.BadRequest(f"Requested token count exceeds the model's maximum context length of {limit} tokens.")
    return_logprob = _per_prompt(body.get("return_logprob"), n, "return_logprob", bool, False)
    starts = _per_prompt(body.get("logprob_start_len"), n, "logprob_start_len", int, -1)
    for i, (ids, start) in enumerate(zip(prompts, starts)):
        if start == -1:
            starts[i] = len(ids) - 1
        elif not 0 <= start < len(ids):
            raise v.BadRequest(
                f"logprob_start_len ({start}) must be -1 or from 0 to the input length minus one ({len(ids) - 1})"
            )
    tops = [
        v.integer(k, "top_logprobs_num", 0, vocab)
        for k in _per_prompt(body.get("top_logprobs_num"), n, "top_logprobs_num", int, 0)
    ]
    if body.get("priority") is not None:
        v.integer(body["priority"], "priority")
    rid = body.get("rid")
    return GenerateRequest(
        prompts=prompts,
        batched=batched,
        sampling=sampling,
        return_logprob=return_logprob,
        logprob_start_len=starts,
        top_logprobs_num=tops,
        return_text_in_logprobs=v.boolean(body.get("return_text_in_logprobs", False), "return_text_in_logprobs"),
        rid=rid if isinstance(rid, str) else uuid.uuid4().hex,
    )


def _prompts(body: dict[str, Any], tokenizer: Tokenizer) -> tuple[list[list[int]], bool]:
    text, input_ids = body.get("text"), body.get("input_ids")
    if (text is None) == (input_ids is None):
        raise v.BadRequest("Either text or input_ids should be provided (exactly one of them).")
    vocab = tokenizer.vocab_size
    if input_ids is not None:
        if isinstance(input_ids, list) and input_ids and isinstance(input_ids[0], list):
            _check_batch(len(input_ids))
            return [v.token_ids(ids, f"input_ids[{i}]", vocab).tolist() for i, ids in enumerate(input_ids)], True
        return [v.token_ids(input_ids, "input_ids", vocab).tolist()], False
    if isinstance(text, list):
        _check_batch(len(text))
        return [_encode(tokenizer, t, f"text[{i}]") for i, t in enumerate(text)], True
    return [_encode(tokenizer, text, "text")], False


def _encode(tokenizer: Tokenizer, text: Any, name: str) -> list[int]:
    ids = tokenizer.encode(v.string(text, name))
    if not ids:
        raise v.BadRequest(f"{name} is empty")
    return ids


def _check_batch(n: int) -> None:
    if not 0 < n <= MAX_PROMPTS:
        raise v.BadRequest(f"a batch holds 1 to {MAX_PROMPTS} prompts, got {n}")


def _per_prompt(value: Any, n: int, name: str, kind: type, default: Any) -> list[Any]:
    """One value per prompt from a single value or a list of n."""
    if value is None:
        return [default] * n
    if isinstance(value, list) and kind is not list:
        if len(value) != n:
            raise v.BadRequest(f"{name}: {len(value)} values for {n} prompts")
        return [_typed(x, f"{name}[{i}]", kind) for i, x in enumerate(value)]
    return [_typed(value, name, kind)] * n


def _typed(value: Any, name: str, kind: type) -> Any:
    checks: dict[type, Callable[[Any, str], Any]] = {bool: v.boolean, int: v.integer, dict: _mapping}
    return checks[kind](value, name)


def _mapping(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise v.BadRequest(f"{name}: expected an object")
    return value


def _sampling(params: dict[str, Any], name: str, vocab: int, default_seed: int) -> SamplingParams:
    """SGLang's sampling_params: max_new_tokens (default 128), temperature, top_p,
    top_k (-1: off), stop, sampling_seed; other fields are accepted and ignored."""

    def get(key: str, check: Callable[[Any], Any], default: Any) -> Any:
        value = params.get(key)
        return default if value is None else check(value)

    stop = get("stop", lambda x: (x,) if isinstance(x, str) else tuple(v.string(s, f"{name}.stop") for s in x), ())
    return SamplingParams(
        max_tokens=get("max_new_tokens", lambda x: v.integer(x, f"{name}.max_new_tokens", 0), 128),
        temperature=get("temperature", lambda x: v.number(x, f"{name}.temperature", 0.0, 100.0), 1.0),
        top_p=get("top_p", lambda x: v.number(x, f"{name}.top_p", 1e-9, 1.0), 1.0),
        top_k=max(get("top_k", lambda x: v.integer(x, f"{name}.top_k", -1, vocab), -1), 0),
        seed=get("sampling_seed", lambda x: v.integer(x, f"{name}.sampling_seed") % 2**64, default_seed),
        stop=tuple(s for s in stop if s),
        logprobs=None,
    )
