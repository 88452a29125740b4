"""/tokenize and /detokenize: round trips, special tokens, stable ids."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refserver.corpus import load_documents
from refserver.tokenizer import IM_END, IM_START, Tokenizer

# Text that stresses the tokenizer: the special tokens, newlines and spaces it
# splits on, words it knows, and anything Unicode (including lone surrogates).
_pieces = st.sampled_from([IM_START, IM_END, "\n", " ", "  ", "\r\n", "\t", "assistant", " the", "Hello", "é", "日本", "🎉", "_", "<|", "|>", "42"])
texts = st.lists(st.one_of(_pieces, st.text()), max_size=12).map("".join)


def detokenize(client, ids):
    response = client.post("/detokenize", json={"model": "memscore-ref", "tokens": ids})
    assert response.status_code == 200, response.text
    return response.json()["prompt"]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=texts)
def test_it_round_trips_any_text_through_the_server(client, tokenize, text):
    assert detokenize(client, tokenize(text)) == text


@settings(max_examples=200, deadline=None)
@given(text=texts | st.text(alphabet=st.characters(codec="utf-8") | st.characters(categories=["Cs"])))
def test_it_round_trips_any_text_in_process(text):
    tokenizer = _tokenizer()
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_it_encodes_special_tokens_as_single_ids(tokenize):
    ids = tokenize(f"{IM_START}{IM_END}")
    assert ids == [0, 1]
    assert tokenize(f"x{IM_START}y") == tokenize("x") + [0] + tokenize("y")


def test_it_tokenizes_a_message_the_same_as_its_parts(tokenize):
    """memscore tokenizes nodes one at a time and concatenates the ids."""
    [im_start] = tokenize(IM_START)
    [im_end] = tokenize(IM_END)
    whole = tokenize(f"{IM_START}assistant\nHi{IM_END}\n")
    assert whole == [im_start] + tokenize("assistant\n") + tokenize("Hi") + [im_end] + tokenize("\n")
    conversation = f"{IM_START}user\nWhere is the bread?{IM_END}\n{IM_START}assistant\nIn the kitchen.{IM_END}\n"
    nodes = [f"{IM_START}user\nWhere is the bread?{IM_END}\n", f"{IM_START}assistant\nIn the kitchen.{IM_END}\n"]
    assert tokenize(conversation) == tokenize(nodes[0]) + tokenize(nodes[1])


def test_it_reports_count_and_model_length(client):
    response = client.post("/tokenize", json={"prompt": "The river is wide."})
    body = response.json()
    assert body["count"] == len(body["tokens"]) > 0
    assert body["max_model_len"] == 262144


def test_it_serves_tokenize_outside_v1_as_vllm_does(server, client):
    url = f"{server.root_url}/tokenize"
    assert client.post(url, json={"prompt": "Hello"}).json()["tokens"] == client.post("/tokenize", json={"prompt": "Hello"}).json()["tokens"]
    assert client.post(f"{server.root_url}/detokenize", json={"tokens": [0]}).json() == {"prompt": IM_START}


def test_it_keeps_token_ids_across_restarts(tokenize):
    """The server process and this one derive the vocabulary separately (with
    different hash seeds) and must agree, as a restarted server must."""
    text = "Good morning! The weather in Zanzibar is 31 degrees.\n<|im_start|>assistant\nTea?<|im_end|>"
    assert tokenize(text) == _tokenizer().encode(text)


def test_it_derives_the_vocabulary_deterministically():
    assert Tokenizer.from_texts(load_documents()).pieces == _tokenizer().pieces


_cached: list[Tokenizer] = []


def _tokenizer() -> Tokenizer:
    if not _cached:
        _cached.append(Tokenizer.from_texts(load_documents()))
    return _cached[0]
