"""What one claimed call asks the server, and what its answer leaves to store. No database.

A call's prompt is its range with its filter applied (scoring/context). A
call that leaves memories out (skip_key, or skip_keys: an estimate's
ablation, a group) with causal windows on
(settings.MEMSCORE_CAUSAL_WINDOWS) asks only for the responses after the
removed memory's first appearance, and tells the server that nothing before
that position is wanted: a causal model predicts every token before it as
in the baseline. The responses before it are stored as None in the call's
result ("unaffected": exactly zero, docs/scoring.md); a call with no
response after its memory needs no request at all. Modes read such a
result with the baseline's score in place of each None (results.settle).

Several calls may go in one request (score_batch) where the backend takes a
list of prompts (vLLM), up to its batch_tokens.
"""

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from django.conf import settings

from scoring.client import InferenceError, PermanentError, Usage, call_with_retries
from scoring.context import TemplateError, chat_template, response_header
from scoring.models import ScoreCall

# A call claimed this many times without an answer keeps killing or hanging
# its workers: it fails rather than being retried for ever.
MAX_CLAIMS = 5


@dataclass
class Outcome:
    result: list = None
    error: str = None
    # Tokens the server was asked to compute, the whole prompt's, and those
    # it says it served from its cache and ran the model over (None: it does not say).
    n_tokens: int = 0
    prompt_tokens: int = 0
    cached_tokens: int = None
    computed_tokens: int = None


@dataclass
class Request:
    """One call's prompt and what of it is asked for."""

    ids: list
    spans: list
    # Leading spans not asked for (before the removed memory), and the first
    # position wanted.
    unaffected: int = 0
    first_needed: int = None

    @property
    def asked(self):
        return self.spans[self.unaffected:]

    def outcome(self, scores, usage, client):
        """The Outcome of the server's scores for the spans asked for."""
        if len(scores) != len(self.asked):
            return Outcome(error=f"the server returned {len(scores)} scores for {len(self.asked)} responses")
        return Outcome(
            result=[None] * self.unaffected + list(scores),
            n_tokens=client.asked_tokens(len(self.ids), self.asked, self.first_needed),
            prompt_tokens=len(self.ids), cached_tokens=usage.cached, computed_tokens=usage.computed,
        )


# The calls that leave some memories out: a causal model predicts everything
# before the first of them as in the baseline.
CAUSAL_FILTERS = (ScoreCall.Filter.SKIP_KEY, ScoreCall.Filter.SKIP_KEYS)


def causal_windows():
    return settings.MEMSCORE_CAUSAL_WINDOWS


def prepare(call, tokens, template):
    """The Request of a claimed call (TemplateError when a node does not fit)."""
    key = call.memory.key if call.memory_id else None
    if call.filter == ScoreCall.Filter.SKIP_KEYS:
        key = call.removed_keys
    if call.filter in CAUSAL_FILTERS and causal_windows():
        ids, spans, changed_from, unaffected = tokens.causal_sequence(
            call.range_start, call.range_end, key, template=template, filter=call.filter
        )
        return Request(ids, spans, unaffected, changed_from)
    # A whole call sends no start: the server checks every response it finds
    # against memscore's (a baseline computes its whole prompt anyway).
    ids, spans = tokens.sequence(call.range_start, call.range_end, call.filter, key, template=template)
    return Request(ids, spans)


def fetch_template(agent, client, *, at_once):
    """Tokenize the agent's chat template ahead of a run's calls (chat_template
    keeps it for the process), its texts up to `at_once` at a time: asked for
    one after the other, they are two round trips before a run's first call
    can be sent. One attempt: a failure is left to the calls, which retry and
    store it as their error."""
    texts = (response_header(agent.message_template), agent.end_of_turn)
    try:
        chat_template(agent, TokenizeAtOnce(client, texts, at_once))
    except (InferenceError, TemplateError):
        pass


class TokenizeAtOnce:
    """A tokenize function that, when first used, tokenizes all of `texts`,
    up to `at_once` at a time (a thread each), and answers from them; any
    other text is tokenized when asked."""

    def __init__(self, client, texts, at_once):
        self.client, self.texts, self.at_once, self.found = client, texts, max(1, at_once), None

    def __call__(self, text):
        if self.found is None:
            with ThreadPoolExecutor(min(self.at_once, len(self.texts))) as pool:
                self.found = dict(zip(self.texts, pool.map(self.client.tokenize, self.texts)))
        return self.found[text] if text in self.found else self.client.tokenize(text)


def abandoned(call):
    if call.attempts > MAX_CLAIMS:
        return Outcome(error=f"abandoned after {call.attempts - 1} claims that never answered")
    return None


def score_call(call, tokens, client, agent, *, on_retry=None):
    """Make one claimed call's score request, retrying transient errors.

    memscore computes the responses' spans with the agent's chat template and
    the server scores them (on the memscore backend, the server finds them too
    and the client checks they agree); one total per response is stored.
    """
    if (given_up := abandoned(call)) is not None:
        return given_up
    try:
        template = call_with_retries(lambda: chat_template(agent, client.tokenize), on_retry=on_retry)
        request = prepare(call, tokens, template)
        if not request.asked:
            return request.outcome([], Usage(), client)
        scores, usage = call_with_retries(
            lambda: client.score_detailed(request.ids, request.asked, first_needed=request.first_needed),
            on_retry=on_retry,
        )
    except (InferenceError, TemplateError) as e:
        return Outcome(error=str(e))
    return request.outcome(scores, usage, client)


def score_batch(calls, tokens, client, agent, *, on_retry=None):
    """score_call of several calls in one request (client.score_each); one
    Outcome per call, in order. A prompt the server answered wrongly fails
    its own call only; an error of the request fails them all."""
    outcomes = [abandoned(call) for call in calls]
    try:
        template = call_with_retries(lambda: chat_template(agent, client.tokenize), on_retry=on_retry)
        requests = {}
        for i, call in enumerate(calls):
            if outcomes[i] is None:
                try:
                    requests[i] = prepare(call, tokens, template)
                except TemplateError as e:
                    outcomes[i] = Outcome(error=str(e))
        sent = [i for i, request in requests.items() if request.asked]
        answers = call_with_retries(
            lambda: client.score_each([(requests[i].ids, requests[i].asked) for i in sent]), on_retry=on_retry
        ) if sent else []
    except (InferenceError, TemplateError) as e:
        return [outcome or Outcome(error=str(e)) for outcome in outcomes]
    answered = dict(zip(sent, answers))
    for i, request in requests.items():
        answer = answered.get(i, [])
        if isinstance(answer, PermanentError):
            outcomes[i] = Outcome(error=str(answer))
        else:
            outcomes[i] = request.outcome(answer, Usage(computed=len(request.ids)), client)
    return outcomes


def batches(calls, client, tokens):
    """The claimed calls grouped into requests: one each, or for a backend that
    takes several prompts, as many as fit its batch_tokens (each prompt counted
    as the whole snapshot's tokens, an upper bound known without cutting it)."""
    if not client.batch_tokens:
        return [[call] for call in calls]
    per_prompt = max(tokens.n_tokens, 1)
    size = max(1, client.batch_tokens // per_prompt)
    return [calls[i : i + size] for i in range(0, len(calls), size)]
