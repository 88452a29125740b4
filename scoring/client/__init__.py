"""The one place memscore talks HTTP to an inference server.

`InferenceClient.for_agent(agent)` gives the client of the agent's server API
(its `backend`): memscore's /score protocol, an unmodified vLLM, or an
unmodified SGLang. Every client scores spans that memscore computed
(`score(prompt_ids, spans)`), tokenizes, streams completions (alternates) and
speaks the /train protocol; errors are sorted as in errors.py.
"""

from .base import BACKENDS, Completion, InferenceClient, Usage, split_base_url
from .errors import (
    InferenceError,
    OutcomeUnknown,
    PermanentError,
    TransientError,
    call_with_retries,
    unknown_model,
)
from .memscore import MemscoreClient
from .sglang import SglangClient
from .vllm import VllmClient

__all__ = [
    "BACKENDS",
    "Completion",
    "InferenceClient",
    "InferenceError",
    "MemscoreClient",
    "OutcomeUnknown",
    "PermanentError",
    "SglangClient",
    "TransientError",
    "Usage",
    "VllmClient",
    "call_with_retries",
    "split_base_url",
    "unknown_model",
]
