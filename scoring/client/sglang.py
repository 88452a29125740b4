"""An unmodified SGLang server: prompt log-probabilities from its native /generate.

Shapes as SGLang's source defines them (read at sgl-project/sglang main,
commit 001067ff, python/sglang/srt/managers/io_struct.py; http_server.py;
entrypoints/openai/protocol.py and serving_tokenize.py at 004c82e0):
- GenerateReqInput: `input_ids` (list, or list of lists), `sampling_params`,
  `return_logprob`, `logprob_start_len` ("the start location in the prompt for
  returning logprobs"), `priority` (SGLang runs higher values first).
- the answer's meta_info.input_token_logprobs is [[logprob, token_id, text], ...]
  for the prompt from logprob_start_len on; the scheduler "always pads the
  first one with None" (scheduler_output_processor_mixin.py), so entry k is
  log P(prompt[start + k] | before it) for k >= 1, and there are
  len(prompt) - logprob_start_len entries. SGLang reuses its radix cache up to
  logprob_start_len, so memscore sets it just before the first position it needs.
- errors: /generate's {"error": {"message"}} (a 400 for a ValueError), the
  OpenAI endpoints' {"object": "error", "message", "type", "param", "code"},
  FastAPI's {"detail"}. /tokenize is served at the root (and /v1/tokenize):
  {"model", "prompt", "add_special_tokens"} → {"tokens", "count", "max_model_len"}.
"""

from .base import InferenceClient, Usage, span_totals
from .errors import PermanentError, TransientError


class SglangClient(InferenceClient):
    backend = "sglang"
    server_name = "SGLang"
    tokenize_at = "root"
    more_urgent = +1  # SGLang runs higher priorities first
    priority_flag = "--enable-priority-scheduling"
    prefix_cache = True  # its radix cache

    def asked_tokens(self, n_prompt, spans, first_needed=None):
        return n_prompt - _start(spans, first_needed) if spans else 0

    def score_detailed(self, prompt_ids, spans, *, first_needed=None):
        if not spans:
            return [], Usage()
        start = _start(spans, first_needed)
        body = {
            "input_ids": prompt_ids,
            "sampling_params": {"max_new_tokens": 1, "temperature": 0},
            "return_logprob": True,
            "logprob_start_len": start,
            **self.priority_field(),
        }
        data = self._post_json("/generate", body)
        entries = _input_logprobs(data, len(prompt_ids), start)

        def logprob_at(position):
            if position <= start:
                raise PermanentError(
                    f"position {position} is not after logprob_start_len {start}: first_needed is wrong"
                )
            entry = entries[position - start]
            if entry[1] != prompt_ids[position]:
                raise PermanentError(
                    f"/generate's input_token_logprobs[{position - start}] is for token {entry[1]}, "
                    f"not the prompt's {prompt_ids[position]} at position {position}"
                )
            if entry[0] is None:
                raise PermanentError(
                    f"/generate answered no log-probability (null: -inf or NaN) for token "
                    f"{prompt_ids[position]} at position {position}"
                )
            return float(entry[0])

        return span_totals(logprob_at, spans), _usage(data.get("meta_info"), len(prompt_ids))


def _start(spans, first_needed):
    """logprob_start_len: just before the first position needed (its entry is null)."""
    first = spans[0][0] if first_needed is None else first_needed
    return max(first - 1, 0)


def _usage(meta, n_prompt):
    """meta_info's cached_tokens (the prompt's tokens its radix cache served), when it says.
    SGLang does not say what it computed: a model that needs no prefix (the
    reference server's n-gram engine) computes less than prompt minus cached."""
    cached = meta.get("cached_tokens") if isinstance(meta, dict) else None
    if not isinstance(cached, int) or not 0 <= cached <= n_prompt:
        return Usage()
    return Usage(cached=cached)


def _input_logprobs(data, n_prompt, start):
    meta = data.get("meta_info")
    finish = meta.get("finish_reason") if isinstance(meta, dict) else None
    if isinstance(finish, dict) and finish.get("type") == "abort":
        raise TransientError(f"/generate aborted the request: {finish.get('message', finish)}")
    entries = meta.get("input_token_logprobs") if isinstance(meta, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, list) and len(e) >= 2 for e in entries):
        raise PermanentError(
            "/generate answered without meta_info.input_token_logprobs: the server does not "
            "return prompt log-probabilities (is it SGLang? is the agent's server API right?)"
        )
    if len(entries) != n_prompt - start:
        raise PermanentError(
            f"/generate answered {len(entries)} input_token_logprobs for a prompt of {n_prompt} "
            f"tokens from logprob_start_len {start} (expected {n_prompt - start}): this SGLang "
            "counts them differently, so its numbers cannot be placed"
        )
    return entries
