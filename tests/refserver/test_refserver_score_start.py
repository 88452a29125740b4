"""/score's logprob_start: only the responses from it on are scored, to the
same totals as without it, and the answer says how many positions were run."""

from __future__ import annotations

import pytest

FIRST, SECOND = "Hello! How can I help?", "The market opens at seven."


@pytest.fixture
def prompt(tokenize, chat):
    return tokenize(chat(("system", "Be brief."), ("user", "Hi"), ("assistant", FIRST),
                         ("user", "When?"), ("assistant", SECOND)))


def last_response_start(prompt, tokenize):
    """Where the last response's text begins: after its header's ids."""
    header = tokenize("<|im_start|>assistant\n")
    at = max(i for i in range(len(prompt)) if prompt[i:i + len(header)] == header)
    return at, at + len(header)


def post(client, prompt, **extra):
    return client.post("/score", json={"model": "memscore-ref", "prompt": prompt, "logprobs": 1, **extra})


def test_it_scores_only_the_responses_from_logprob_start_with_the_same_totals(client, prompt, server, tokenize):
    whole = post(client, prompt).json()
    assert whole["logprob_start"] == 0
    assert whole["usage"] == {"prompt_tokens": len(prompt), "computed_tokens": len(prompt), "cached_tokens": 0}
    # From the second response's header on: only it, to the same total.
    second_header, _ = last_response_start(prompt, tokenize)
    before = server.stats()["scored_tokens"]
    later = post(client, prompt, logprob_start=second_header).json()
    assert later["logprob_start"] == second_header
    assert [s["n_tokens"] for s in later["scores"]] == [whole["scores"][1]["n_tokens"]]
    assert later["scores"][0]["total_logprob"] == pytest.approx(whole["scores"][1]["total_logprob"], abs=1e-9)
    assert later["usage"]["computed_tokens"] == len(prompt) - second_header
    after = server.stats()["scored_tokens"]
    assert after["computed"] - before["computed"] == len(prompt) - second_header
    assert after["prompt"] - before["prompt"] == len(prompt)


def test_a_start_inside_a_response_or_out_of_range_is_refused(client, prompt, tokenize):
    _, start = last_response_start(prompt, tokenize)
    inside = start + 1  # within the second response
    r = post(client, prompt, logprob_start=inside)
    assert r.status_code == 400 and "falls inside the response" in r.json()["error"]
    for bad in (-1, len(prompt), "3", True):
        assert post(client, prompt, logprob_start=bad).status_code == 400, bad
    # At a response's first token it counts as that response's own start.
    assert len(post(client, prompt, logprob_start=start).json()["scores"]) == 1
