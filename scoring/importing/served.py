"""What the agent's server says about its model that an import can check against.

Only the vocabulary size, and only where the server says it: the reference
server's `GET /health` answers `vocab_size`; stock vLLM and SGLang answer
nothing there (their /v1/models gives `max_model_len`, not the vocabulary), so
their snapshots' ids are imported unchecked and a run that meets a bad id
fails naming the call.
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
