"""/score: one total per assistant response, from a normalised distribution, and
context that measurably matters."""

from __future__ import annotations

import math

import pytest

from refserver.tokenizer import FIRST_BYTE_ID

SYSTEM = ("system", "You are a helpful assistant. Answer briefly and kindly.")
MEMORIES = {
    "people/okonkwo": "Memory people/okonkwo: Professor Okonkwo keeps a tortoise named Galileo at the lighthouse on Tresco.",
    "notes/bicycle": "Memory notes/bicycle: The user's bicycle has a green frame and a bell that rings twice.",
    "events/dinner": "Memory events/dinner: Dinner with the neighbours is on Friday at seven, and the user is bringing soup.",
}
QUESTION = ("user", "Who looks after Galileo?")
ANSWER = ("assistant", "Professor Okonkwo keeps Galileo, a tortoise, at the lighthouse on Tresco.")


@pytest.fixture
def score(client):
    def call(prompt: list[int]) -> dict:
        response = client.post("/score", json={"model": "memscore-ref", "prompt": prompt, "logprobs": 1, "priority": 5})
        assert response.status_code == 200, response.text
        return response.json()

    return call


def test_it_scores_each_assistant_response(score, tokenize, chat):
    first, second = "Hello! How can I help?", "The market opens at seven."
    prompt = tokenize(chat(SYSTEM, ("user", "Hi"), ("assistant", first), ("user", "When?"), ("assistant", second)))
    body = score(prompt)
    assert body["prompt_tokens"] == len(prompt)
    assert [s["n_tokens"] for s in body["scores"]] == [
        len(tokenize(first)) + 1,  # the response's text and its <|im_end|>
        len(tokenize(second)) + 1,
    ]
    assert all(s["total_logprob"] < 0 for s in body["scores"])


def test_it_scores_a_response_without_im_end_to_the_end_of_the_prompt(score, tokenize, chat):
    prompt = tokenize(chat(("user", "Hi"))) + tokenize("<|im_start|>assistant\nHello there")
    [only] = score(prompt)["scores"]
    assert only["n_tokens"] == len(tokenize("Hello there"))


def test_it_returns_no_scores_without_a_response(score, tokenize, chat):
    assert score(tokenize(chat(("user", "Hi"))))["scores"] == []


def test_it_is_deterministic(score, tokenize, chat):
    prompt = tokenize(chat(SYSTEM, QUESTION, ANSWER))
    assert score(prompt) == score(prompt)


def test_its_next_token_distribution_sums_to_one(client, tokenize, chat):
    """The full distribution at a position, read through completions' logprobs."""
    vocab = client.get(client.base_url.join("../health")).json()["vocab_size"]
    for text in ["", chat(SYSTEM, QUESTION) + "<|im_start|>assistant\nProfessor Okonkwo keeps", chat(SYSTEM, QUESTION, ANSWER)]:
        prompt = tokenize(text) or tokenize("The")
        choice = _one_step(client, prompt, vocab)
        [top] = choice["logprobs"]["top_logprobs"]
        assert len(top) == vocab
        assert math.fsum(math.exp(lp) for lp in top.values()) == pytest.approx(1.0, abs=1e-9)


def test_its_scores_are_sums_of_the_normalised_log_probabilities(client, score, tokenize, chat):
    """score(prefix + [w]) - score(prefix) is log P(w | prefix) from the same
    distribution that sums to one, for every kind of token."""
    vocab = client.get(client.base_url.join("../health")).json()["vocab_size"]
    prefix = tokenize(chat(SYSTEM, QUESTION) + "<|im_start|>assistant\nProfessor Okonkwo keeps Galileo")
    [top] = _one_step(client, prefix, vocab)["logprobs"]["top_logprobs"]
    most_likely = tokenize(max(top, key=top.get))
    byte_c3 = FIRST_BYTE_ID + 0xC3  # a byte token of a non-ASCII character, named "<0xC3>"
    base = score(prefix)["scores"][0]["total_logprob"]
    for token in [0, 1, FIRST_BYTE_ID + ord(" "), byte_c3, tokenize(" the")[0], *most_likely, vocab - 1]:
        name = "<0xC3>" if token == byte_c3 else client.post("/detokenize", json={"tokens": [token]}).json()["prompt"]
        extended = score(prefix + [token])["scores"][0]["total_logprob"]
        assert extended - base == pytest.approx(top[name], abs=1e-9)


def test_removing_a_memory_the_response_repeats_lowers_its_score_by_several_nats(score, tokenize, chat):
    def response_logprob(without: str | None = None) -> float:
        memories = [("system", text) for key, text in MEMORIES.items() if key != without]
        [response] = score(tokenize(chat(SYSTEM, *memories, QUESTION, ANSWER)))["scores"]
        return response["total_logprob"]

    baseline = response_logprob()
    related = baseline - response_logprob(without="people/okonkwo")
    unrelated = [baseline - response_logprob(without=key) for key in ("notes/bicycle", "events/dinner")]
    assert related > 20.0
    assert all(abs(u) < 3.0 for u in unrelated)
    assert related > 20 * max(abs(u) for u in unrelated)


def test_it_scores_a_long_prompt(score, tokenize, chat):
    turn = chat(("user", "Tell me about the river."), ("assistant", "The river is wide and slow near the town."))
    prompt = tokenize(turn) * 2000
    body = score(prompt)
    assert len(body["scores"]) == 2000
    # The cache makes a response the model has seen many times nearly certain.
    first, last = body["scores"][0], body["scores"][-1]
    assert last["total_logprob"] / last["n_tokens"] > -0.1 > first["total_logprob"] / first["n_tokens"]


def _one_step(client, prompt: list[int], vocab: int) -> dict:
    response = client.post("/completions", json={"prompt": prompt, "max_tokens": 1, "logprobs": vocab, "temperature": 0})
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]
