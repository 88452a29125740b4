"""Candidates as the scoring engine makes them, for the review and training tests.

Each candidate gets a small snapshot of its own (a user turn, a memory, the
response) whose token ids come from the reference server's /tokenize, so
context_ids and continuation_ids are real ids of the served model.
"""

import itertools
import threading
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from scoring.client import InferenceClient
from scoring.models import Candidate, Node, Snapshot
from scoring.models.snapshots import Section

_numbers = itertools.count(1)
_ids_cache = {}


def token_ids(agent, node):
    text = agent.render_node(node)
    key = (agent.base_url, text)
    if key not in _ids_cache:
        with InferenceClient.for_agent(agent) as client:
            _ids_cache[key] = client.tokenize(text)
    return _ids_cache[key]


def make_candidate(agent, *, divergence=2.0, response_text=None, alternate_text="",
                   status=Candidate.Status.PENDING, user_text=None, memory_text=None):
    n = next(_numbers)
    taken_at = timezone.now() - timedelta(hours=1)
    snapshot = Snapshot.objects.create(agent=agent, taken_at=taken_at, source=Snapshot.Source.API)
    specs = [
        dict(role="user", text=user_text or f"What did Alice say about the garden, question {n}?"),
        dict(memory_key="people/alice", text=memory_text or "Alice grows tomatoes and basil."),
        dict(role="assistant", text=response_text or f"Alice said the tomatoes need more sun, answer {n}."),
    ]
    nodes = []
    for index, spec in enumerate(specs):
        node = Node(snapshot=snapshot, section=Section.CONVERSATION, index=index,
                    timestamp=taken_at + timedelta(seconds=index), **spec)
        node.token_ids = token_ids(agent, node)
        node.n_tokens = len(node.token_ids)
        node.save()
        nodes.append(node)
    response = nodes[-1]
    return Candidate.objects.create(
        agent=agent,
        snapshot=snapshot,
        response=response,
        response_key=f"{response.timestamp.isoformat()}#{n}",
        divergence=divergence,
        response_text=response.text,
        context_ids=[t for node in nodes[:-1] for t in node.token_ids],
        continuation_ids=response.token_ids,
        alternate_text=alternate_text,
        alternate_status=(
            Candidate.AlternateStatus.DONE if alternate_text else Candidate.AlternateStatus.NONE
        ),
        status=status,
    )


def make_approved(agent, count=1, **kwargs):
    return [make_candidate(agent, status=Candidate.Status.APPROVED, **kwargs) for _ in range(count)]


def on_sqlite():
    return settings.DATABASES["default"]["ENGINE"].endswith("sqlite3")


def run_in_threads(n, target):
    """Run target(i) in n threads started together, each on its own database
    connection; returns their results (an exception is returned, not raised)."""
    barrier = threading.Barrier(n)
    results = [None] * n

    def work(i):
        try:
            barrier.wait(10)
            results[i] = target(i)
        except Exception as e:  # reported to the test, which decides
            results[i] = e
        finally:
            connection.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


# --- the review pages' URLs and actions, shared by their test modules ---------

XSS = "<script>alert('x')</script>"


def queue_url(**params):
    url = reverse("review_queue")
    return url + ("?" + "&".join(f"{k}={v}" for k, v in params.items()) if params else "")


def detail_url(c):
    return reverse("candidate_detail", args=[c.pk])


def decide(client, c, decision, comment="", seen_edit=None, **extra):
    """POST a decision; `seen_edit`: the form's field, what the page showed (left out: not sent)."""
    data = {"decision": decision, "comment": comment}
    if seen_edit is not None:
        data["seen_edit"] = seen_edit
    return client.post(reverse("candidate_decide", args=[c.pk]), data, **extra)
