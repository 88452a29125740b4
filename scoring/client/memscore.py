"""memscore's own protocol (docs/protocol.md): the server finds the responses
and sums them (POST /v1/score); memscore checks its answer against the spans
memscore computed itself."""

from .base import InferenceClient, Usage
from .errors import PermanentError, TransientError


class MemscoreClient(InferenceClient):
    backend = "memscore"
    server_name = "memscore-protocol"
    tokenize_at = "v1"
    more_urgent = -1  # as vLLM: lower runs first

    # A memscore-protocol server may keep a prefix cache (the reference
    # server's transformer engine does): baselines first.
    prefix_cache = True

    def score_detailed(self, prompt_ids, spans, *, first_needed=None):
        body = {"model": self.model, "prompt": prompt_ids, "logprobs": 1, **self.priority_field()}
        if first_needed:
            body["logprob_start"] = first_needed
        data = self._post_json("/v1/score", body)
        try:
            scores = data["scores"]
            totals = [float(s["total_logprob"]) for s in scores]
        except (KeyError, TypeError, ValueError) as e:
            raise TransientError(f"/v1/score answered without valid scores: {e!r}") from None
        if "logprob_start" in body and data.get("logprob_start") != first_needed and len(scores) > len(spans):
            # A server that predates logprob_start scored every response: the
            # ones asked for are the last.
            scores, totals = scores[-len(spans):] if spans else [], totals[-len(spans):] if spans else []
        check_against_spans(scores, spans)
        return totals, _usage(data.get("usage"))


    def asked_tokens(self, n_prompt, spans, first_needed=None):
        # logprob_start: nothing before it is computed.
        return n_prompt - (first_needed or 0) if spans else 0


def _usage(usage):
    """The answer's usage (docs/protocol.md), what of it is a count."""
    if not isinstance(usage, dict):
        return Usage()
    found = {name: usage.get(f"{name}_tokens") for name in ("computed", "cached")}
    return Usage(**{k: v if isinstance(v, int) and v >= 0 else None for k, v in found.items()})


def check_against_spans(scores, spans):
    """The server's responses must be memscore's: as many, each as long (when it says)."""
    if len(scores) != len(spans):
        raise PermanentError(
            f"/v1/score returned {len(scores)} scores for {len(spans)} responses (memscore's spans: "
            f"{_spans_text(spans)}): the server found other responses than the agent's message "
            "template and end-of-turn setting give"
        )
    for i, (score, (start, end)) in enumerate(zip(scores, spans)):
        n_tokens = score.get("n_tokens") if isinstance(score, dict) else None
        if n_tokens is not None and n_tokens != end - start:
            raise PermanentError(
                f"/v1/score's response {i} has {n_tokens} tokens where memscore's span "
                f"[{start}, {end}) has {end - start}: the server found other responses than the "
                "agent's message template and end-of-turn setting give"
            )


def _spans_text(spans, limit=4):
    shown = ", ".join(f"[{a}, {b})" for a, b in spans[:limit])
    return shown + (", ..." if len(spans) > limit else "") if spans else "none"
