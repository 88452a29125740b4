"""Leave-one-out on the real model, and the KV prefix cache changing no number."""

from __future__ import annotations

import httpx
import pytest
from realmodel_support import ANSWER, MEMORIES, context_text, engine_args, score, tokenize

from refserver.testing import run_refserver

pytestmark = pytest.mark.realmodel


@pytest.fixture(scope="module")
def servers(tmp_path_factory, converted_weights):
    """The same model with the prefix cache and without it."""
    with (
        run_refserver(tmp_path_factory.mktemp("cached"), *engine_args(converted_weights)) as cached,
        run_refserver(
            tmp_path_factory.mktemp("uncached"), *engine_args(converted_weights, "--prefix-cache-mb", "0")
        ) as uncached,
    ):
        yield cached, uncached


def _variants(client: httpx.Client, answer: str = ANSWER) -> dict[str, list[int]]:
    """The full context and each leave-one-out variant, as token ids."""
    out = {"all": tokenize(client, context_text(MEMORIES, answer))}
    for i, memory in enumerate(MEMORIES):
        out[memory] = tokenize(client, context_text(MEMORIES[:i] + MEMORIES[i + 1 :], answer))
    return out


def test_leave_one_out_signal(servers):
    cached, _ = servers
    with httpx.Client(base_url=cached.base_url, timeout=120) as client:
        totals = {name: score(client, ids)["scores"][0]["total_logprob"] for name, ids in _variants(client).items()}
    used = totals["all"] - totals[MEMORIES[0]]
    unrelated = [abs(totals["all"] - totals[m]) for m in MEMORIES[1:]]
    print(f"answer {ANSWER!r}: {totals['all']:.3f} nats with every memory; drop without the cat memory {used:.3f}, "
          f"without unrelated ones {unrelated[0]:.4f} and {unrelated[1]:.4f}")
    assert used >= 10
    assert max(unrelated) < 1


def test_prefix_cache_changes_no_number(servers):
    cached, uncached = servers
    with (
        httpx.Client(base_url=cached.base_url, timeout=120) as with_cache,
        httpx.Client(base_url=uncached.base_url, timeout=120) as without_cache,
    ):
        # Not the answer of the test above: nothing of these is cached yet.
        variants = _variants(with_cache, "Quillon Vasterbrook, your cat.")
        before = _metrics(with_cache)
        answers = [(score(with_cache, ids), score(without_cache, ids)) for ids in variants.values()]
        after = _metrics(with_cache)
        uncached_metrics = _metrics(without_cache)
    largest = max(
        abs(a["total_logprob"] - b["total_logprob"])
        for hot, cold in answers
        for a, b in zip(hot["scores"], cold["scores"], strict=True)
    )
    print(f"prefix cache: totals differ by at most {largest:.1e} nats")
    for hot, cold in answers:
        for a, b in zip(hot["scores"], cold["scores"], strict=True):
            # The cached path computes in other shapes, which round otherwise:
            # in float64 (weights.for_scoring) by about 1e-11 nats on a total,
            # far within the 1e-4 the scores are promised to (in float32 CI saw
            # 3.4e-4 on a total of -11.64).
            assert abs(a["total_logprob"] - b["total_logprob"]) <= 1e-6
            assert a["n_tokens"] == b["n_tokens"]
    served = after["refserver_tokens_cached"] - before["refserver_tokens_cached"]
    computed = after["refserver_tokens_computed"] - before["refserver_tokens_computed"]
    # The server without a cache computed every position the scores needed.
    needed = uncached_metrics["refserver_tokens_computed"]
    print(f"prefix cache: {computed} of {needed} positions computed, {served} served from the cache")
    assert uncached_metrics["refserver_tokens_cached"] == 0
    assert served > 0 and served + computed == needed
    # Each answer's usage says what its own request computed and took from the cache.
    assert sum(hot["usage"]["cached_tokens"] for hot, _ in answers) == served
    assert sum(hot["usage"]["computed_tokens"] for hot, _ in answers) == computed
    assert answers[1][0]["usage"]["cached_tokens"] > 0  # a variant reuses the full context's prefix


def _metrics(client: httpx.Client) -> dict[str, float]:
    text = client.get(str(client.base_url).removesuffix("/v1/").removesuffix("/v1") + "/metrics").text
    return {line.split()[0]: float(line.split()[1]) for line in text.splitlines() if "{" not in line}
