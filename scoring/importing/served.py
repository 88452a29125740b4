"""What the agent's server says about its model that an import can check against.

Only the vocabulary size, and only where the server says it: the reference
server's `GET /health` answers `vocab_size`. Stock vLLM and SGLang do not say
it (their /v1/models gives `max_model_len`), but their tokenizer refuses to
decode an id outside the vocabulary: the import then finds the smallest
given id their /detokenize refuses (a binary search over the snapshot's
distinct ids, a handful of calls) and treats it as the vocabulary's end. A
server that answers neither imports the ids unchecked.
"""

import httpx

from scoring.client import InferenceClient, InferenceError

# The import waits for this answer: a server that does not answer fast is
# treated as one that does not say (the ids are imported unchecked).
HEALTH_TIMEOUT = 3.0
VOCAB_SOURCE = "the server's /health"


def served_vocab_size(agent):
    """The vocabulary size the agent's server reports, or None where it does not say."""
    try:
        with InferenceClient.for_agent(agent) as client:
            response = client.http.get(client.url("/health"), timeout=HEALTH_TIMEOUT)
        data = response.json() if response.status_code == 200 else None
    except (httpx.HTTPError, InferenceError, ValueError):
        return None
    size = data.get("vocab_size") if isinstance(data, dict) else None
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return size
    return None


DETOKENIZE_SOURCE = "the server's /detokenize"
# A cap on the probes of one import: a binary search over 2**12 distinct ids.
MAX_PROBES = 12


def refused_from(agent, given_ids):
    """The smallest of `given_ids` the server's tokenizer refuses, as a
    vocabulary size for check_vocabulary; None when it refuses none or cannot
    say. Assumes what a vocabulary is: ids refused from some id on."""
    ids = sorted(set(given_ids))
    if not ids:
        return None
    with InferenceClient.for_agent(agent) as client:
        if client.refuses_token(ids[-1]) is not True:
            return None
        low, high = 0, len(ids) - 1  # ids[high] is refused
        for _ in range(MAX_PROBES):
            if low >= high:
                break
            middle = (low + high) // 2
            refused = client.refuses_token(ids[middle])
            if refused is None:
                break
            if refused:
                high = middle
            else:
                low = middle + 1
        return ids[high]
