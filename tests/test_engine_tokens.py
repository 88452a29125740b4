"""Token sequences: what tokens(range, filter) keeps, and how fast it cuts a big context."""

import time

import pytest
from django.utils import timezone

from scoring.context import ChatTemplate, Filter, SnapshotTokens, TemplateError, chat_template, response_header
from scoring.models import Agent, Node, Section, Snapshot
from tests.engine_support import build_ids, node_rows

pytestmark = pytest.mark.django_db


def make_context(n_conversation, tokens_per_node, n_keys, *, identity_keys=2):
    """A snapshot written directly with made-up ids: no server needed."""
    agent = Agent.objects.create(name="big", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = Snapshot.objects.create(agent=agent, taken_at=timezone.now(), source=Snapshot.Source.CLI)
    counter = iter(range(10**9))

    def node(section, index, role="", key=""):
        ids = [next(counter) % 50_000 for _ in range(tokens_per_node)]
        return Node(snapshot=snapshot, section=section, index=index, role=role, memory_key=key,
                    token_ids=ids, n_tokens=len(ids))

    nodes = [node(Section.SYSTEM, 0, role="system")]
    nodes += [node(Section.IDENTITY, i, key=f"identity/{i}") for i in range(identity_keys)]
    nodes += [node(Section.JOURNAL, 0, role="system")]
    for i in range(n_conversation):
        kind = i % 3
        if kind == 1:
            # Keys come back: key k appears at several places in the conversation.
            nodes.append(node(Section.CONVERSATION, i, key=f"key/{(i // 3) % n_keys}"))
        else:
            nodes.append(node(Section.CONVERSATION, i, role="user" if kind == 0 else "assistant"))
    # An identity key that also appears in the conversation.
    nodes[-2] = node(Section.CONVERSATION, n_conversation - 2, key="identity/0")
    Node.objects.bulk_create(nodes, batch_size=500)
    return snapshot


def test_it_builds_the_sequences_of_the_design():
    snapshot = make_context(30, 4, 5)
    tokens = SnapshotTokens(snapshot.pk)
    nodes = node_rows(snapshot)

    assert tokens.tokens(0, 30) == build_ids(nodes)
    assert tokens.tokens(4, 17) == build_ids(nodes, 4, 17)
    assert tokens.tokens(0, 30, Filter.SKIP_KEY, "key/2") == build_ids(
        nodes, skip=lambda n: n.memory_key == "key/2")
    # A key in identity and conversation is removed from both.
    assert tokens.tokens(0, 30, Filter.SKIP_KEY, "identity/0") == build_ids(
        nodes, skip=lambda n: n.memory_key == "identity/0")
    assert tokens.tokens(10, 30, Filter.SKIP_ALL) == build_ids(nodes, 10, 30, skip=lambda n: bool(n.memory_key))
    assert tokens.tokens(0, 30, Filter.SKIP_KEY, "not/there") == build_ids(nodes)
    assert [e.index for e in tokens.responses(0, 9)] == [2, 5, 8]
    assert tokens.node_ids(7) == nodes[-30 + 7].token_ids


def test_it_cuts_500_filtered_sequences_from_a_200k_token_context_quickly():
    snapshot = make_context(2_000, 100, 500)
    started = time.monotonic()
    tokens = SnapshotTokens(snapshot.pk)
    loaded = time.monotonic() - started

    started = time.monotonic()
    lengths = {len(tokens.tokens(0, 2_000, Filter.SKIP_KEY, f"key/{k}")) for k in range(500)}
    cut = time.monotonic() - started

    total = 2_004 * 100
    assert tokens.n_tokens == total
    # Each key appears at one or two places in the conversation.
    assert lengths <= {total - 100, total - 200}
    assert loaded < 10, loaded
    # Milliseconds each: seconds per sequence would make this minutes.
    assert cut < 10, cut


# --- response spans ---------------------------------------------------------------

HEADER = (900, 901)
EOT = 902


def chat_context():
    """system, a memory, user, assistant (header + 2 ids + eot + newline), user, assistant."""
    agent = Agent.objects.create(name="spans", base_url="http://127.0.0.1:9/v1", model="m")
    snapshot = Snapshot.objects.create(agent=agent, taken_at=timezone.now(), source=Snapshot.Source.CLI)
    rows = [
        (Section.SYSTEM, 0, "system", "", [1, 2]),
        (Section.CONVERSATION, 0, "", "key/a", [3, 4, 5]),
        (Section.CONVERSATION, 1, "user", "", [6]),
        (Section.CONVERSATION, 2, "assistant", "", [*HEADER, 10, 11, EOT, 13]),
        (Section.CONVERSATION, 3, "user", "", [7, 8]),
        (Section.CONVERSATION, 4, "assistant", "", [*HEADER, 20, EOT, 13]),
    ]
    Node.objects.bulk_create([
        Node(snapshot=snapshot, section=s, index=i, role=r, memory_key=k, token_ids=ids, n_tokens=len(ids))
        for s, i, r, k, ids in rows
    ])
    return agent, SnapshotTokens(snapshot.pk)


def test_the_sequence_carries_the_spans_of_its_responses():
    _, tokens = chat_context()
    template = ChatTemplate(header=HEADER, end_of_turn=EOT)
    ids, spans = tokens.sequence(0, 5, template=template)
    assert ids == tokens.tokens(0, 5)
    # From after the header through the end-of-turn id, inclusive.
    assert [ids[a:b] for a, b in spans] == [[10, 11, EOT], [20, EOT]]
    assert spans == [(8, 11), (16, 18)]
    ids, spans = tokens.sequence(0, 5, Filter.SKIP_KEY, "key/a", template=template)
    assert spans == [(5, 8), (13, 15)] and [ids[a:b] for a, b in spans] == [[10, 11, EOT], [20, EOT]]
    assert tokens.sequence(3, 4, template=template)[1] == []


def test_prefix_ids_come_first_and_shift_the_spans():
    _, tokens = chat_context()
    ids, spans = tokens.sequence(0, 5, template=ChatTemplate(header=HEADER, end_of_turn=EOT, prefix=(128000,)))
    assert ids[0] == 128000 and ids[1:] == tokens.tokens(0, 5)
    assert spans == [(9, 12), (17, 19)]


def test_a_response_that_does_not_fit_the_template_names_the_node_and_the_setting():
    _, tokens = chat_context()
    with pytest.raises(TemplateError, match=r"conversation\[2\] does not start with the response header \[900, 999\]"):
        tokens.sequence(0, 5, template=ChatTemplate(header=(900, 999), end_of_turn=EOT))
    with pytest.raises(TemplateError, match=r"conversation\[2\] has no end-of-turn id 55 .*end-of-turn setting"):
        tokens.sequence(0, 5, template=ChatTemplate(header=HEADER, end_of_turn=55))


def recording_tokenizer():
    """A tokenize function for the chat template's texts, and the texts it was asked, in order."""
    asked = []
    vocabulary = {"<|im_start|>assistant\n": [900, 901], "<|im_end|>": [902], "<|eot_id|>": [5, 6]}

    def tokenize(text):
        asked.append(text)
        return vocabulary[text]

    return tokenize, asked


def test_the_chat_template_is_tokenized_once_per_agent_and_settings():
    agent, _ = chat_context()
    tokenize, asked = recording_tokenizer()
    agent.prefix_ids = [1]
    assert chat_template(agent, tokenize) == ChatTemplate(header=HEADER, end_of_turn=EOT, prefix=(1,))
    assert chat_template(agent, tokenize) == ChatTemplate(header=HEADER, end_of_turn=EOT, prefix=(1,))
    assert asked == ["<|im_start|>assistant\n", "<|im_end|>"]
    agent.end_of_turn = "<|eot_id|>"
    with pytest.raises(TemplateError, match=r"end-of-turn setting '<\|eot_id\|>' is 2 tokens"):
        chat_template(agent, tokenize)
    assert response_header("<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>") == (
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_another_process_takes_the_chat_template_from_the_shared_cache(monkeypatch):
    from scoring.context import tokens

    agent, _ = chat_context()
    tokenize, asked = recording_tokenizer()
    assert chat_template(agent, tokenize).header == HEADER
    tokens._templates.clear()  # a fresh process: only the shared cache remembers
    assert chat_template(agent, tokenize) == ChatTemplate(header=HEADER, end_of_turn=EOT)
    assert asked == ["<|im_start|>assistant\n", "<|im_end|>"]

    # A refused template is not shared: the setting may be mended on the server.
    agent.end_of_turn = "<|eot_id|>"
    for _ in range(2):
        tokens._templates.clear()
        with pytest.raises(TemplateError):
            chat_template(agent, tokenize)
    assert asked[2:] == ["<|im_start|>assistant\n", "<|eot_id|>"] * 2

    # A cache that cannot answer costs the round trip, nothing more.
    class Down:
        def get(self, *args, **kwargs):
            raise ConnectionError("cache down")

        set = get

    monkeypatch.setattr(tokens, "cache", Down())
    agent.end_of_turn = "<|im_end|>"
    tokens._templates.clear()
    del asked[:]
    assert chat_template(agent, tokenize).end_of_turn == EOT
    assert asked == ["<|im_start|>assistant\n", "<|im_end|>"]
