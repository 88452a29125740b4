"""Check connection: will this agent's server give right numbers?

`check_agent(agent)` asks the agent's inference server a handful of small
questions, each with a short timeout and no retries, so it answers in a few
seconds, and returns one CheckResult per question: its name, whether it
passed (None when there was nothing to check it on) and, in words, what was
found and what to change. It writes nothing. The page's action and
`manage.py check_agent` show the results.

The questions, in order (a failure of the first skips those that need it):
- the server answers (GET /v1/models) and serves the agent's model;
- the end-of-turn text is one token;
- nodes of the latest snapshot tokenized one at a time (as an import does)
  give the same ids as their whole rendered text, and as the ids stored;
- the spans memscore finds in a sample of the snapshot are its responses:
  after each response's header, up to its last end-of-turn token;
- a score call on that sample returns one finite log-probability per span
  (the memscore backend also compares the count /score finds with memscore's);
- with training target /train: the server answers /train.
"""

import copy
import math
from dataclasses import dataclass

from scoring.client import InferenceClient, InferenceError, unknown_model
from scoring.context import Filter, TemplateError, chat_template, response_header, snapshot_tokens
from scoring.models import Node
from scoring.models.agents import TrainingTarget
from scoring.models.snapshots import SECTION_ORDER, Section

# Seconds each call may take: a check that hangs is an answer in itself.
CALL_TIMEOUT = 20.0
# The sample: conversation entries up to the end of this many responses...
SAMPLE_RESPONSES = 2
# ...and at most this many nodes tokenized one at a time.
SAMPLE_NODES = 12
# Asked for with GET /v1/train/<id>: a server with /train answers 404 for an unknown job.
PROBE_JOB_ID = "memscore-check-probe"


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool | None  # None: skipped, nothing to check it on
    message: str

    @property
    def label(self):
        return {True: "ok", False: "FAIL", None: "skip"}[self.ok]


def passed(name, message):
    return CheckResult(name, True, message)


def failed(name, message):
    return CheckResult(name, False, message)


def skipped(name, message):
    return CheckResult(name, None, message)


ANSWERS, MODEL, END_OF_TURN = "server answers", "model is served", "end of turn is one token"
TOKENIZATION, STORED_IDS = "nodes tokenize as the whole text", "stored ids match the server"
SPANS, SCORE, TRAIN = "spans are the responses", "score is finite", "/train answers"


def call_timeout(agent):
    """Seconds each of the check's calls to `agent`'s server may take."""
    return min(agent.request_timeout, CALL_TIMEOUT)


def check_agent(agent):
    """Ask the agent's server; returns a list of CheckResult, in order."""
    # A copy, so the short timeout never reaches the saved agent.
    agent = copy.copy(agent)
    agent.request_timeout = call_timeout(agent)
    with InferenceClient.for_agent(agent) as client:
        try:
            served = client.models()
        except InferenceError as e:
            why = f"not checked: {_why_not_asked(e)}"
            return [failed(ANSWERS, f"{e}{advice(e, agent)}")] + [
                skipped(name, why) for name in (MODEL, END_OF_TURN, TOKENIZATION, STORED_IDS, SPANS, SCORE, TRAIN)
            ]
        results = [passed(ANSWERS, f"{agent.base_url} answers (server API: {agent.backend})."),
                   _model_served(agent, served)]
        eot, eot_problem = _end_of_turn(agent, client)
        results.append(eot)
        results.extend(_snapshot_checks(agent, client, eot_problem=eot_problem))
        results.append(_train(agent, client))
    return results


def _why_not_asked(error):
    """Why the questions after a failed GET /v1/models were not asked. The
    server may well have answered (a redirect, a 401, a 500, a body without
    models): "does not answer" only when it did not."""
    text = str(error)
    if "not sent" in text:  # the client refused the base URL itself
        return "memscore does not call this base URL"
    if "cannot connect" in text or "no answer" in text or "took longer" in text:
        return "the server does not answer"
    return "/v1/models failed"


# --- one check each --------------------------------------------------------------

def _model_served(agent, served):
    if agent.model in served:
        return passed(MODEL, f"The server serves {agent.model}.")
    names = ", ".join(served) or "no model"
    return failed(MODEL, f"The server serves {names}, not {agent.model}: "
                         f"set the agent's model name to one of them.")


def _end_of_turn(agent, client):
    """(result, why the checks that need one token skip, or None when it is one)."""
    ids = _ask(END_OF_TURN, lambda: client.tokenize(agent.end_of_turn), agent)
    if isinstance(ids, CheckResult):
        return ids, "the server did not tokenize the end-of-turn text"
    if len(ids) == 1:
        return passed(END_OF_TURN, f"{agent.end_of_turn!r} is token {ids[0]}."), None
    return failed(END_OF_TURN, (
        f"{agent.end_of_turn!r} tokenizes to {len(ids)} tokens {ids[:8]}: set the agent's end-of-turn "
        f"to the one special token that ends a message in the model's chat template "
        f"(<|im_end|> for ChatML models such as Qwen, <|eot_id|> for Llama 3)."
    )), "the end-of-turn setting is not one token"


def _snapshot_checks(agent, client, *, eot_problem):
    snapshot = agent.snapshots.order_by("-taken_at", "-id").first()
    if snapshot is None:
        return [skipped(name, "not checked: the agent has no snapshot yet")
                for name in (TOKENIZATION, STORED_IDS, SPANS, SCORE)]
    tokens = snapshot_tokens(snapshot)
    end = _window_end(tokens)
    results = list(_tokenization(agent, client, _sample_nodes(snapshot, end)))
    if eot_problem:
        why = f"not checked: {eot_problem}"
        return results + [skipped(SPANS, why), skipped(SCORE, why)]
    if not tokens.responses(0, end):
        why = f"not checked: snapshot {snapshot.pk} has no assistant responses"
        return results + [skipped(SPANS, why), skipped(SCORE, why)]
    spans_result, sequence = _spans(agent, client, tokens, end)
    results.append(spans_result)
    if sequence is None:
        # Found but not the responses, or not found at all: the spans' row says which.
        return results + [skipped(SCORE, "not checked: the spans check failed")]
    results.append(_score(agent, client, *sequence))
    return results


def _tokenization(agent, client, nodes):
    """Nodes one at a time against their whole text, and against their stored ids."""
    texts = [agent.render_node(node) for node in nodes]
    one_by_one = []
    for text in texts:
        ids = _ask(TOKENIZATION, lambda text=text: client.tokenize(text), agent)
        if isinstance(ids, CheckResult):
            return [ids, skipped(STORED_IDS, "not checked: the server did not tokenize")]
        one_by_one.append(ids)
    whole = _ask(TOKENIZATION, lambda: client.tokenize("".join(texts)), agent)
    if isinstance(whole, CheckResult):
        return [whole, _stored_ids(nodes, one_by_one)]
    joined = [t for ids in one_by_one for t in ids]
    at = first_difference(joined, whole)
    if at is None:
        result = passed(TOKENIZATION, f"{len(nodes)} nodes ({len(joined)} tokens) tokenize one at a "
                                      f"time exactly as their whole text.")
    else:
        result = failed(TOKENIZATION, (
            f"Tokenized one at a time, {len(nodes)} nodes differ from their whole text at position "
            f"{at} ({_where(nodes, one_by_one, at)}): one at a time gives {joined[at:at + 4]}, the whole "
            f"text {whole[at:at + 4]}. The tokenizer merges across node boundaries: end the message "
            f"and memory templates with a newline or a special token, or send each node's token ids "
            f"with the snapshot."
        ))
    return [result, _stored_ids(nodes, one_by_one)]


def _stored_ids(nodes, server_ids):
    for node, ids in zip(nodes, server_ids):
        at = first_difference(node.token_ids, ids)
        if at is not None:
            return failed(STORED_IDS, (
                f"{node.section}[{node.index}]'s stored ids differ from the server's tokenization of "
                f"its rendered text at position {at}: stored {node.token_ids[at:at + 4]}, server "
                f"{ids[at:at + 4]}. The agent sent ids of another tokenizer or template: check the "
                f"agent's model and templates, or import snapshots without ids."
            ))
    return passed(STORED_IDS, f"The stored ids of {len(nodes)} nodes are the server's tokenization.")


def _spans(agent, client, tokens, end):
    """memscore's spans of conversation [0, end) against the responses' own ids.

    Returns (result, (ids, spans) or None)."""
    header = _ask(SPANS, lambda: client.tokenize(response_header(agent.message_template)), agent)
    eot = _ask(SPANS, lambda: client.tokenize(agent.end_of_turn), agent)
    for answer in (header, eot):
        if isinstance(answer, CheckResult):
            return answer, None
    try:
        ids, spans = sequence_for(agent, client, tokens, end)
    except InferenceError as e:
        return failed(SPANS, f"{e}{advice(e, agent)}"), None
    except TemplateError as e:  # a response without the header or an end of turn: says which
        return failed(SPANS, f"{e}."), None
    expected = expected_spans(tokens, end, len(agent.prefix_ids), header, eot[0])
    if spans == expected:
        return passed(SPANS, f"memscore finds the {len(spans)} responses of conversation[0:{end}] "
                             f"at the responses' own positions."), (ids, spans)
    return failed(SPANS, (
        f"memscore found {len(spans)} spans {spans[:3]} where conversation[0:{end}] has "
        f"{len(expected)} responses at {expected[:3]}. Check the agent's message template, "
        f"end-of-turn and prefix ids."
    )), None


def _score(agent, client, ids, spans):
    scores = _ask(SCORE, lambda: client.score(ids, spans), agent)
    if isinstance(scores, CheckResult):
        return scores
    if len(scores) != len(spans):
        return failed(SCORE, f"The score call gave {len(scores)} numbers for {len(spans)} responses.")
    bad = [s for s in scores if not math.isfinite(s) or s > 0]
    if bad:
        return failed(SCORE, (
            f"The score call gave {bad[:3]} among {len(scores)} numbers: log-probabilities must be "
            f"finite and at most 0. The server is not computing prompt log-probabilities of this model."
        ))
    shown = ", ".join(f"{s:.2f}" for s in scores)
    return passed(SCORE, f"{len(scores)} responses of {len(ids)} tokens score {shown} nats.")


def _train(agent, client):
    if agent.training_target == TrainingTarget.NONE:
        return skipped(TRAIN, "not checked: the training target is none (approved samples are exported as JSONL)")
    try:
        client.train_status(PROBE_JOB_ID)
    except InferenceError as e:
        # A server with /train knows it has no such job; one without has no such path.
        if "HTTP 404" in str(e) and "job" in str(e).lower():
            return passed(TRAIN, "The server answers /train (an unknown job is a 404, as it should be).")
        return failed(TRAIN, (
            f"The server does not answer /train ({e}): set the agent's training target to "
            f"none (export only) and export approved samples as JSONL, or point it at a server with /train."
        ))
    return passed(TRAIN, "The server answers /train.")


# --- the sample and the pieces the checks compare ------------------------------------

def _window_end(tokens):
    """The end of the conversation sample: just after its SAMPLE_RESPONSES-th response."""
    seen = 0
    for entry in tokens.entries:
        seen += entry.is_response
        if seen == SAMPLE_RESPONSES:
            return entry.index + 1
    return len(tokens.entries)


def _sample_nodes(snapshot, end):
    """The first node of each section before the conversation, then the
    conversation's entries up to `end`: SAMPLE_NODES at most, in context order."""
    nodes = Node.objects.filter(snapshot=snapshot)
    sample = []
    for section in SECTION_ORDER:
        if section == Section.CONVERSATION:
            sample += nodes.filter(section=section, index__lt=end).order_by("index")[:SAMPLE_NODES]
        else:
            sample += nodes.filter(section=section).order_by("index")[:1]
    return sample[:SAMPLE_NODES]


def sequence_for(agent, client, tokens, end):
    """memscore's own prompt and spans for conversation [0, end), no filter,
    with the agent's chat template as the engine gets it."""
    template = chat_template(agent, client.tokenize)
    return tokens.sequence(0, end, Filter.NONE, None, template=template)


def expected_spans(tokens, end, prefix_len, header, eot):
    """The responses' spans worked out from the nodes' stored ids, apart from
    the sequence code: after the header, up to the node's last end-of-turn id
    (None for a response that does not have both)."""
    position, spans = prefix_len, []
    for node_ids, conv in zip(tokens.node_ids_list, tokens.conv_index.tolist()):
        if conv >= end:
            continue
        if conv >= 0 and tokens.entries[conv].is_response:
            if node_ids[:len(header)] == header and eot in node_ids:
                last = len(node_ids) - 1 - node_ids[::-1].index(eot)
                spans.append((position + len(header), position + last + 1))
            else:
                spans.append(None)
        position += len(node_ids)
    return spans


def first_difference(a, b):
    """The first position where two id lists differ, or None when equal."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))


def _where(nodes, id_lists, at):
    """'conversation[3], its token 5' for a position in the joined ids."""
    for node, ids in zip(nodes, id_lists):
        if at < len(ids):
            return f"{node.section}[{node.index}], its token {at}"
        at -= len(ids)
    return "after the last node"


def _ask(name, call, agent):
    """call()'s answer, or a failed CheckResult saying what to change."""
    try:
        return call()
    except InferenceError as e:
        return failed(name, f"{e}{advice(e, agent)}")


def advice(error, agent):
    """What to change for an error the client raised, in words."""
    text = str(error)
    if "cannot connect" in text:
        return f". Check the agent's base URL ({agent.base_url}) and that the server is running."
    if "HTTP 401" in text or "HTTP 403" in text:
        return ". Set the agent's API key (or the environment variable it is read from)."
    if unknown_model(error):
        # The path exists; the server does not know the model name.
        if "the agent's model name" in text:  # the client said so already
            return ""
        return f". Check the agent's model name ({agent.model!r}): the server's /v1/models lists those it serves."
    if "HTTP 404" in text:
        return (f". The server has no such path: check the agent's server API "
                f"({agent.get_backend_display()}) and base URL.")
    if "took longer" in text or "no answer" in text:
        return f". The server did not answer within {CALL_TIMEOUT:g} s: is it overloaded or still loading?"
    return ""
