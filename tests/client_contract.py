"""Replaying a server's JSON bodies through the real client: an agent-like
stub, a client whose HTTP goes to httpx.MockTransport, and what it sent."""

import json
from dataclasses import dataclass, field

import httpx

from scoring.client import InferenceClient


@dataclass
class AgentStub:
    """What InferenceClient.for_agent and chat_template read of an Agent."""

    backend: str
    base_url: str = "http://gpu-1:8000"
    model: str = "qwen"
    priority: int | None = None
    name: str = "helper"
    request_timeout: float = 5.0
    pk: int = 1
    message_template: str = "<|im_start|>{role}\n{text}<|im_end|>\n"
    end_of_turn: str = "<|im_end|>"
    prefix_ids: list = field(default_factory=list)
    score_batch_tokens: int = 65_536

    def get_api_key(self):
        return ""


@dataclass
class Sent:
    method: str
    url: str
    body: object


def replaying(backend, answer, **agent):
    """(client, sent): `answer(request) -> httpx.Response` serves every call."""
    sent = []

    def handler(request):
        body = json.loads(request.content) if request.content else None
        sent.append(Sent(request.method, str(request.url), body))
        return answer(request)

    client = InferenceClient.for_agent(AgentStub(backend=backend, **agent))
    client.http = httpx.Client(transport=httpx.MockTransport(handler))
    return client, sent


def answering(status, body):
    return lambda request: httpx.Response(status, json=body)


def sse(*payloads):
    text = "".join(f"data: {p if isinstance(p, str) else json.dumps(p)}\n\n" for p in payloads)
    return lambda request: httpx.Response(200, headers={"Content-Type": "text/event-stream"}, content=text.encode())
