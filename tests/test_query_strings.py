"""Query strings no page expects: a NUL (PostgreSQL refuses it in any
string), a digit that is not ASCII, an id past what the database holds.
Every list answers a page (the value ignored) or a 400, never a 500, and no
such value reaches the database."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tests.matrix_data import matrix_run

ODD_VALUES = ["\x00", "a\x00b", "1\x00", "²", "99999999999999999999", "-1", "2026-02-30"]

LISTS = {
    "agent_list": ({}, ["page"]),
    "run_list": ({}, ["agent", "status", "mode", "page"]),
    "candidate_list": ({}, ["agent", "status", "page"]),
    "candidate_export": ({}, ["agent"]),
    "review_queue": ({}, ["agent"]),
    "train_job_list": ({}, ["agent", "page"]),
    "activity_list": ({}, ["actor", "verb", "target_type", "since", "until", "page"]),
    "memory_list": ({"agent_id": True}, ["q", "flag", "sort", "page"]),
    "snapshot_detail": ({"pk": True}, ["page"]),
}


@pytest.fixture
def run(db):
    from scoring.models import Agent

    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m")
    return matrix_run(agent, [[1.0, -0.7]] * 2)


def _url(name, needs, run):
    kwargs = {}
    if "agent_id" in needs:
        kwargs["agent_id"] = run.agent_id
    if "pk" in needs:
        kwargs["pk"] = run.snapshot_id
    return reverse(name, kwargs=kwargs)


def _cases():
    for name, (needs, params) in LISTS.items():
        for param in params:
            yield name, needs, param


@pytest.mark.parametrize("name, needs, param", list(_cases()))
def test_it_answers_odd_query_values_without_an_error(cast, run, name, needs, param):
    client = cast.client_for(cast.operator)
    url = _url(name, needs, run)
    for value in ODD_VALUES:
        with CaptureQueriesContext(connection) as queries:
            response = client.get(url, {param: value})
        assert response.status_code in (200, 400), (url, param, value)
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
        reached = [q["sql"] for q in queries if "\x00" in q["sql"]]
        assert not reached, (url, param, value, reached)
