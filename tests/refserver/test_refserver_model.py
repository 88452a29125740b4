"""The model in process: the vectorised scoring path against the one-position path."""

from __future__ import annotations

import numpy as np
import pytest

from refserver.corpus import load_documents
from refserver.model import ModelBuilder, _Occurrences


@pytest.fixture(scope="module")
def model():
    return ModelBuilder().build()


def test_vectorised_scoring_matches_the_full_distribution_at_every_kind_of_position(model):
    """token_logprobs (sorted lookups, argsort cache counts) must give exactly the
    log-probabilities of next_token_logprobs (dense counts), which sum to one."""
    tokenizer = model.tokenizer
    ids = np.array([t for doc in load_documents()[:200] for t in tokenizer.encode(doc)] * 2)
    assert len(ids) > 8000  # long enough for the sorted-query path
    scored = model.token_logprobs(ids)
    rng = np.random.default_rng(0)
    for t in [0, 1, 2, 3, *rng.integers(4, len(ids), 25), len(ids) - 1]:
        full = model.next_token_logprobs(ids[:t])
        assert np.exp(full).sum() == pytest.approx(1.0, abs=1e-9)
        assert scored[t] == pytest.approx(full[ids[t]], abs=1e-9)


@pytest.mark.parametrize("high", [5, 2**40, 2**62])  # the last forces the stable-argsort path
def test_earlier_occurrence_counts_are_exact(high):
    rng = np.random.default_rng(1)
    keys = rng.choice(rng.integers(0, high, 40, dtype=np.int64), 3000)
    flags = rng.random(3000) < 0.3
    occurrences = _Occurrences(keys)
    asked = rng.integers(0, 3000, 200)
    seen, flagged = occurrences.counts(asked, flags)
    assert (occurrences.counts(asked)[0] == seen).all()
    for i, n_seen, n_flagged in zip(asked, seen, flagged):
        before = keys[:i] == keys[i]
        assert n_seen == before.sum()
        assert n_flagged == (before & flags[:i]).sum()
    new_next = occurrences.new_next()
    assert [bool(x) for x in new_next] == [keys[j + 1] not in keys[: j + 1] for j in range(2999)] + [False]


def test_distributions_along_a_prompt_equal_the_next_token_distributions(model):
    """The incremental distributions behind vLLM's ranks and top-k are the model's."""
    ids = np.array(model.tokenizer.encode("\n".join(load_documents())), np.int64)[:800]
    positions = [1, 2, 3, 7, 50, len(ids) - 1]
    for t, dist in zip(positions, model.distributions(ids, positions)):
        assert np.allclose(dist, model.next_token_logprobs(ids[:t]), rtol=0, atol=1e-12), t
    whole = list(model.distributions(ids, range(1, len(ids))))
    assert np.allclose([d[ids[t]] for t, d in zip(range(1, len(ids)), whole)], model.token_logprobs(ids)[1:], atol=1e-12)
