"""An unmodified vLLM server: prompt log-probabilities from /v1/completions,
summed over memscore's spans.

Shapes as vLLM's source defines them (read at vllm-project/vllm main,
commit 002032ee, and v0.10's vllm/entrypoints/openai/protocol.py at 0052bed3):
- vllm/entrypoints/openai/completion/protocol.py: CompletionRequest takes
  `prompt` as list[int] or list[list[int]], `prompt_logprobs`, `priority`
  ("lower means earlier handling; ... any priority other than 0 will raise
  an error if the served model does not use priority scheduling");
  CompletionResponseChoice.prompt_logprobs is list[dict[int, Logprob] | None]
  (JSON: keys are the token ids as strings, values {"logprob", "rank",
  "decoded_token"}, position 0 null), choices carry their `index`.
- serving code, clamp_prompt_logprobs: a -inf log-probability is sent as -9999.0.
- the engine: "Got priority N but Priority scheduling is not enabled." (a 400).
- vllm/entrypoints/openai/protocol.py: ErrorResponse {"error": {"message",
  "type", "param", "code"}} (before v0.10: {"object": "error", "message", ...});
  TokenizeCompletionRequest {"model", "prompt", "add_special_tokens"} →
  TokenizeResponse {"count", "max_model_len", "tokens"}, served at the root
  (/tokenize, /detokenize), not under /v1.
vLLM skips its prefix cache for prompt-logprob requests, so every call
computes the whole prompt.
"""

import math

from .base import InferenceClient, Usage, span_totals
from .errors import PermanentError, TransientError

# What vLLM sends for a log-probability of -inf (clamp_prompt_logprobs).
CLAMPED_NEG_INF = -9999.0


class VllmClient(InferenceClient):
    backend = "vllm"
    server_name = "vLLM"
    tokenize_at = "root"
    more_urgent = -1
    priority_flag = "--scheduling-policy priority"

    # Several prompts to a request, up to this many tokens in all (the
    # agent's score_batch_tokens; this is its default): vLLM cannot read its
    # prefix cache for prompt-logprobs requests, so a matrix gains nothing
    # from waiting for its baseline, only from fewer round trips. At ~50
    # bytes of JSON a prompt position, 64k tokens answer about 3 MB.
    batch_tokens = 65_536

    def score_detailed(self, prompt_ids, spans, *, first_needed=None):
        if not spans:
            return [], Usage()
        return self.score_many([(prompt_ids, spans)])[0], Usage(computed=len(prompt_ids))

    def score_many(self, prompts):
        """score() of several (prompt_ids, spans) in one request (a list of prompts)."""
        results = self.score_each(prompts)
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    def score_each(self, prompts):
        """score_many, with a prompt whose answer cannot be read given as its
        PermanentError in its place (the others' totals stand); an error of the
        whole request is raised."""
        body = {
            "model": self.model,
            "prompt": prompts[0][0] if len(prompts) == 1 else [ids for ids, _ in prompts],
            "max_tokens": 1,
            "temperature": 0,
            "prompt_logprobs": 0,
            **self.priority_field(),
        }
        data = self._post_json("/v1/completions", body)
        choices = _choices(data, len(prompts))
        results = []
        for choice, (ids, spans) in zip(choices, prompts):
            try:
                results.append(_totals(choice, ids, spans))
            except PermanentError as e:
                results.append(e)
        return results


def _choices(data, expected):
    try:
        choices = sorted(data["choices"], key=lambda c: c["index"])
    except (KeyError, TypeError) as e:
        raise TransientError(f"/v1/completions answered without indexed choices: {e!r}") from None
    if len(choices) != expected:
        raise PermanentError(f"/v1/completions answered {len(choices)} choices for {expected} prompts")
    return choices


def _totals(choice, ids, spans):
    logprobs = choice.get("prompt_logprobs")
    if not isinstance(logprobs, list):
        raise PermanentError(
            "/v1/completions answered without prompt_logprobs: the server does not return "
            "prompt log-probabilities (is it vLLM? is the agent's server API right?)"
        )
    if len(logprobs) != len(ids):
        raise PermanentError(
            f"/v1/completions answered {len(logprobs)} prompt_logprobs for a prompt of {len(ids)} tokens"
        )

    def logprob_at(position):
        entry = logprobs[position]
        token = ids[position]
        try:
            value = float(entry[str(token)]["logprob"])
        except (KeyError, TypeError, ValueError):
            raise PermanentError(
                f"/v1/completions has no log-probability of token {token} at position {position} "
                f"(answered {entry!r:.120})"
            ) from None
        if value == CLAMPED_NEG_INF or not math.isfinite(value):
            raise PermanentError(
                f"/v1/completions answered {value} (vLLM's clamp of -inf) for token {token} at "
                f"position {position}: the model gives that token no probability, so the "
                "response's score is not a number"
            )
        return value

    return span_totals(logprob_at, spans)
