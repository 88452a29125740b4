"""The whole path on each server API, through a real Celery worker: a snapshot
imported without ids, a full matrix, a fine-tune run with alternates, review,
export (and /train where the server has it), against reference servers that
expose only memscore's, vLLM's or SGLang's surface (`--api`).

The reference server runs one model behind all three surfaces, so the three
matrices must agree (1e-6) with each other and with /score's own sums. Each
server logs its requests: on a stock surface any call to an endpoint it lacks
answers 404 (or 405), and the tests fail on it.
"""

import contextlib
import json
import os
import re

import httpx
import pytest
from django.urls import reverse

from scoring.checks import check_agent
from scoring.editing import edit_and_approve
from scoring.engine import run_inline, start_run
from scoring.followups import Followups
from scoring.models import Agent, Candidate, ScoringRun, TrainJob
from scoring.outbox import NoTrainingTarget, send_to_training
from scoring.tasks.enqueue import enqueue_on_commit
from tests.conftest import run_on_worker, wait_for
from tests.engine_support import (
    independent_deltas,
    make_snapshot,
    private_refserver,  # noqa: F401  (the reference /score sums come from this module's own server)
)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

APIS = ["memscore", "vllm", "sglang"]
FINETUNE = {"count": 100, "min_divergence": 1.0, "alternates": True}
# The access log's request line: "POST /v1/completions HTTP/1.1" 200
REQUEST_LINE = re.compile(r'"([A-Z]+) (\S+) HTTP/[\d.]+" (\d{3})')


class LoggedServer:
    """A reference server with one API surface and its access log in a file."""

    def __init__(self, api, handle, log_path):
        self.api, self.handle, self.log_path = api, handle, log_path

    @property
    def agent_url(self):
        # Both forms are accepted: the root for the stock servers, /v1 for memscore's.
        return self.handle.base_url if self.api == "memscore" else self.handle.root_url

    def requests(self):
        """[(method, path, status)] the server answered, its test-control calls left out."""
        found = REQUEST_LINE.findall(self.log_path.read_text(errors="replace"))
        return [(m, p, int(s)) for m, p, s in found if "/_control/" not in p and p != "/health"]

    def missing_endpoints_called(self):
        return sorted({f"{m} {p} -> {s}" for m, p, s in self.requests() if s in (404, 405)})


@contextlib.contextmanager
def stderr_into(path):
    """This process's fd 2 points at `path` meanwhile: a child started now keeps it."""
    saved = os.dup(2)
    with open(path, "ab") as f:
        os.dup2(f.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def logged_refserver(tmp_path, api, *args):
    from refserver.testing import run_refserver

    log_path = tmp_path / f"refserver-{api}.log"
    with stderr_into(log_path):
        server = run_refserver(tmp_path / f"state-{api}", "--api", api, "--access-log", *args)
        handle = server.__enter__()
    try:
        yield LoggedServer(api, handle, log_path)
    finally:
        server.__exit__(None, None, None)


def make_agent(server):
    trains = server.api == "memscore"
    return Agent.objects.create(
        name=f"on-{server.api}", base_url=server.agent_url, model="memscore-ref", backend=server.api,
        training_target=Agent.TrainingTarget.TRAIN if trains else Agent.TrainingTarget.NONE,
    )


def matrix(run):
    """{(memory key, response's conversation index): delta}: comparable across snapshots."""
    return {(key, index): delta
            for key, index, delta in run.cells.values_list("memory__key", "response__index", "delta")}


def by_index(deltas, snapshot):
    """independent_deltas' {key: {response node id: delta}} keyed as matrix() is."""
    index = dict(snapshot.nodes.values_list("pk", "index"))
    return {(key, index[node]): delta for key, cells in deltas.items() for node, delta in cells.items()}


def assert_close(found, expected, what):
    assert found.keys() == expected.keys(), what
    worst = max(abs(found[k] - expected[k]) for k in expected)
    assert worst < 1e-6, f"{what}: differs by up to {worst}"


def approve_all(client, candidates):
    for candidate in candidates:
        r = client.post(reverse("candidate_decide", args=[candidate.pk]), {"decision": "approve"})
        assert r.status_code == 302, r.content[:500]
    assert set(Candidate.objects.filter(pk__in=[c.pk for c in candidates])
               .values_list("status", flat=True)) == {"approved"}


def exported(client, agent):
    r = client.get(reverse("candidate_export") + f"?agent={agent.pk}")
    return [json.loads(line) for line in b"".join(r.streaming_content).decode().splitlines()]


@pytest.mark.parametrize("api", APIS)
def test_the_whole_path_on_each_api(api, refserver, cast, fast_worker, tmp_path):
    with logged_refserver(tmp_path, api) as server:
        agent = make_agent(server)
        snapshot = make_snapshot(agent, extra_memories=2)  # no ids: the server tokenizes

        full = run_on_worker(start_run(snapshot, "full"))
        reference = by_index(independent_deltas(refserver.base_url, snapshot), snapshot)
        assert_close(matrix(full), reference, f"{api}: the full matrix against /score's sums")

        finetune = run_on_worker(start_run(snapshot, "finetune", params=FINETUNE))
        candidates = list(Candidate.objects.filter(run=finetune))
        assert candidates, "no candidate above 1 nat"
        wait_for(lambda: all(c.alternate_status == Candidate.AlternateStatus.DONE
                             for c in Candidate.objects.filter(run=finetune)),
                 timeout=60, message="every alternate")
        assert all(c.alternate_text for c in Candidate.objects.filter(run=finetune))

        approve_all(cast.client_for(cast.reviewer), candidates)
        lines = exported(cast.client_for(cast.viewer), agent)
        assert sorted(line["provenance"]["candidate_id"] for line in lines) == sorted(c.pk for c in candidates)
        assert all(line["context_ids"] and line["continuation_ids"] for line in lines)

        if agent.training_target == Agent.TrainingTarget.TRAIN:
            job = send_to_training(agent, cast.operator)
            enqueue_on_commit(Followups(train_jobs=[job.pk]))
            wait_for(lambda: TrainJob.objects.get(pk=job.pk).server_job_id, timeout=60,
                     message="the server to accept the job")
            assert set(Candidate.objects.filter(run=finetune).values_list("status", flat=True)) == {"trained"}
        else:
            with pytest.raises(NoTrainingTarget):
                send_to_training(agent, cast.operator)

        assert server.missing_endpoints_called() == []


def test_the_three_apis_give_identical_matrices(fast_worker, tmp_path):
    matrices = {}
    for api in APIS:
        with logged_refserver(tmp_path, api) as server:
            snapshot = make_snapshot(make_agent(server), extra_memories=2)
            matrices[api] = matrix(run_on_worker(start_run(snapshot, "full")))
    assert len(matrices["memscore"]) > 20
    for api in ("vllm", "sglang"):
        assert_close(matrices[api], matrices["memscore"], f"{api} against memscore")


# Every endpoint memscore calls on a stock server, and nothing else.
STOCK_ENDPOINTS = {
    "vllm": {("GET", "/v1/models"), ("POST", "/tokenize"), ("POST", "/v1/completions")},
    "sglang": {("GET", "/v1/models"), ("POST", "/tokenize"), ("POST", "/generate"),
               ("POST", "/v1/completions")},
}


@pytest.mark.parametrize("api", ["vllm", "sglang"])
def test_memscore_never_calls_an_endpoint_a_stock_server_lacks(api, cast, tmp_path):
    with logged_refserver(tmp_path, api) as server:
        agent = make_agent(server)
        snapshot = make_snapshot(agent)
        assert [r.ok for r in check_agent(agent)] == [True] * 7 + [None]  # /train: not asked
        for mode, params in [("full", None), ("memory", {"key": "people/bob"}), ("finetune", FINETUNE)]:
            run = run_inline(start_run(snapshot, mode, params=params))
            assert run.status == ScoringRun.Status.SUCCEEDED, (mode, run.error)
        candidate = Candidate.objects.filter(run=run).first()
        assert candidate.alternate_text
        edit_and_approve(candidate, cast.reviewer, "A corrected answer, tokenized by the server.")
        assert exported(cast.client_for(cast.viewer), agent)

        assert server.missing_endpoints_called() == []
        called = {(method, path) for method, path, _ in server.requests()}
        assert called == STOCK_ENDPOINTS[api]


def test_the_access_log_catches_a_call_to_a_missing_endpoint(tmp_path):
    # The guard above is only as good as this: the memscore protocol's /score on vLLM's surface.
    with logged_refserver(tmp_path, "vllm") as server:
        r = httpx.post(f"{server.handle.base_url}/score", json={"model": "memscore-ref", "prompt": [0, 5]})
        assert r.status_code == 404
        # The line is written as the answer goes out: wait for it, not for the answer.
        logged = wait_for(server.missing_endpoints_called, timeout=5, message="the access log")
        assert logged == ["POST /v1/score -> 404"]
