"""/train: jobs that really train, persist across restarts, and are idempotent."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from refserver.testing import run_refserver

MEMORY = ("system", "Memory people/okonkwo: Professor Okonkwo keeps a tortoise named Galileo at the lighthouse on Tresco.")
QUESTION = ("user", "Who looks after Galileo?")
ANSWER = "Professor Okonkwo keeps Galileo, a tortoise, at the lighthouse on Tresco."


@pytest.fixture
def sample(tokenize, chat):
    """A fine-tune candidate as memscore builds it: the context before the response
    with the memory in it, and the response's own ids."""
    header = tokenize("<|im_start|>assistant\n")
    continuation = tokenize(ANSWER + "<|im_end|>")
    with_memory = tokenize(chat(MEMORY, QUESTION)) + header
    without_memory = tokenize(chat(QUESTION)) + header
    return {
        "training": {"context_ids": with_memory, "continuation_ids": continuation},
        "probe": without_memory + continuation,  # scored before and after training
    }


def post_train(client, samples, key=None):
    headers = {"Idempotency-Key": key} if key else {}
    return client.post("/train", json={"training_data": {"samples": samples}}, headers=headers)


def wait_for(client, job_id, statuses=("succeeded", "failed"), timeout=10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/train/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not reach {statuses}: {job}")


def response_logprob(client, prompt) -> float:
    return client.post("/score", json={"prompt": prompt}).json()["scores"][0]["total_logprob"]


def test_training_raises_the_continuation_logprob_and_survives_a_restart(tmp_path, sample):
    state = tmp_path / "state"
    with run_refserver(state) as server, httpx.Client(base_url=server.base_url) as client:
        before = response_logprob(client, sample["probe"])
        response = post_train(client, [sample["training"]])
        assert response.status_code == 200
        assert response.json()["status"] == "queued"
        job = wait_for(client, response.json()["job_id"])
        assert job["status"] == "succeeded", job
        after = response_logprob(client, sample["probe"])
    assert after > before + 10.0

    with run_refserver(state) as server, httpx.Client(base_url=server.base_url) as client:
        assert client.get(f"/train/{job['job_id']}").json() == job
        assert response_logprob(client, sample["probe"]) == after


def test_a_repeated_idempotency_key_returns_the_same_job_even_after_a_restart(tmp_path, sample):
    state, key = tmp_path / "state", f"candidate-{uuid.uuid4()}"
    with run_refserver(state) as server, httpx.Client(base_url=server.base_url) as client:
        first = post_train(client, [sample["training"]], key)
        again = post_train(client, [sample["training"]], key)
        assert first.status_code == again.status_code == 200
        assert again.json()["job_id"] == first.json()["job_id"]
        assert again.headers["Idempotent-Replayed"] == "true"
        wait_for(client, first.json()["job_id"])
        other = post_train(client, [sample["training"]], "another-key")
        assert other.json()["job_id"] != first.json()["job_id"]
        stats = server.stats()
        assert stats["train_posts"] == 3
        assert sum(stats["jobs"].values()) == 2
    with run_refserver(state) as server, httpx.Client(base_url=server.base_url) as client:
        after_restart = post_train(client, [sample["training"]], key)
        assert after_restart.json()["job_id"] == first.json()["job_id"]
        assert after_restart.json()["status"] == "succeeded"
        assert sum(server.stats()["jobs"].values()) == 2


def test_a_reused_idempotency_key_with_other_samples_is_refused(server, client, sample):
    key = f"candidate-{uuid.uuid4()}"
    assert post_train(client, [sample["training"]], key).status_code == 200
    changed = {**sample["training"], "continuation_ids": sample["training"]["continuation_ids"][:-1]}
    response = post_train(client, [changed], key)
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["error"]


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    """A server of this module's own, whose faults these tests change."""
    with run_refserver(tmp_path_factory.mktemp("trainer")) as handle:
        yield handle


@pytest.fixture(scope="module")
def trainer_client(trainer):
    with httpx.Client(base_url=trainer.base_url) as client:
        yield client


def test_a_job_goes_queued_running_succeeded(trainer, trainer_client, sample):
    trainer.control(latency_ms=300)
    client = trainer_client
    job_id = post_train(client, [sample["training"]]).json()["job_id"]
    seen = [client.get(f"/train/{job_id}").json()["status"]]
    while seen[-1] not in ("succeeded", "failed"):
        time.sleep(0.02)
        status = client.get(f"/train/{job_id}").json()["status"]
        if status != seen[-1]:
            seen.append(status)
    job = client.get(f"/train/{job_id}").json()
    assert seen == ["queued", "running", "succeeded"]
    assert job["samples"] == 1 and job["error"] is None
    assert job["created_at"] <= job["started_at"] <= job["finished_at"]


def test_a_job_that_fails_says_why(trainer, trainer_client, sample):
    trainer.control(fail_nth=[1], fail_endpoints=["train_job"])
    client = trainer_client
    before = response_logprob(client, sample["probe"])
    job = wait_for(client, post_train(client, [sample["training"]]).json()["job_id"])
    assert job["status"] == "failed"
    assert "injected failure" in job["error"]
    assert job["finished_at"] is not None
    assert response_logprob(client, sample["probe"]) == before  # a failed job leaves the model as it was


def test_a_job_interrupted_by_a_stop_runs_after_the_restart(tmp_path, sample):
    state = tmp_path / "state"
    hung_trainer = ("--fail-nth", "1", "--fail-endpoints", "train_job", "--fail-mode", "hang")
    with run_refserver(state, *hung_trainer) as server, httpx.Client(base_url=server.base_url) as client:
        job_id = post_train(client, [sample["training"]]).json()["job_id"]
        wait_for(client, job_id, statuses=("running",))
    with run_refserver(state) as server, httpx.Client(base_url=server.base_url) as client:
        assert wait_for(client, job_id)["status"] == "succeeded"


def test_an_unknown_job_is_404(client):
    response = client.get("/train/job-does-not-exist")
    assert response.status_code == 404
    assert "job-does-not-exist" in response.json()["error"]


def test_a_job_says_its_progress_only_while_it_runs():
    from refserver.training import FAILED, QUEUED, RUNNING, SUCCEEDED, Job

    job = Job(job_id="j", seq=0, samples=[], request_hash="h")
    job.progress = {"step": 3, "steps": 20}  # an engine with steps (the transformer's LoRA) sets it
    for status, shown in ((QUEUED, False), (RUNNING, True), (SUCCEEDED, False), (FAILED, False)):
        job.status = status
        assert ("progress" in job.public()) == shown, status
    job.status = RUNNING
    assert job.public()["progress"] == {"step": 3, "steps": 20}
    assert Job.from_record(job.record()).progress == {"step": 3, "steps": 20}  # kept across a restart's reload
