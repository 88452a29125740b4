"""Training jobs: accepted at once, run one at a time in the background, persisted.

The state directory holds ``refserver-state.json`` (which vocabulary the state was
made with) and one file per job under ``jobs/`` with its status, its samples and
its Idempotency-Key. What a job trains, and how the trained model is brought back
at start-up, is the engine's (``engines.py``): the n-gram engine rebuilds it from
the corpus plus the samples of the succeeded jobs, in the order they were trained;
the transformer engine loads the adapter the latest succeeded job saved.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .engines import Engine
from .faults import Faults
from .model import Sample

log = logging.getLogger(__name__)

STATE_FORMAT = 1
QUEUED, RUNNING, SUCCEEDED, FAILED = "queued", "running", "succeeded", "failed"


class StateError(Exception):
    """The state directory cannot be used; the server must not start on it."""


class IdempotencyConflict(Exception):
    pass


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    job_id: str
    seq: int  # creation order, so unfinished jobs resume in the order they came
    samples: list[Sample]
    request_hash: str
    idempotency_key: str | None = None
    status: str = QUEUED
    created_at: str = field(default_factory=_now)
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    trained_seq: int | None = None  # position among succeeded jobs in the model
    truncated_samples: int = 0  # samples whose context was cut from the left
    max_tokens: int | None = None  # ... to fit this many tokens with the continuation
    training: dict[str, Any] | None = None  # what the engine reports (steps, seconds, loss)
    progress: dict[str, int] | None = None  # {"step", "steps"} while an engine with steps trains

    def public(self) -> dict[str, Any]:
        out = {
            "job_id": self.job_id,
            "status": self.status,
            "samples": len(self.samples),
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "model_version": self.trained_seq,
        }
        if self.truncated_samples:
            out["truncated_samples"] = self.truncated_samples
            out["warning"] = (
                f"{self.truncated_samples} sample(s) had their context cut from the left to fit "
                f"{self.max_tokens} tokens with the continuation"
            )
        if self.training is not None:
            out["training"] = self.training
        if self.status == RUNNING and self.progress is not None:
            out["progress"] = self.progress
        return out

    def record(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["samples"] = [[list(s.context_tail), list(s.continuation)] for s in self.samples]
        return d

    @classmethod
    def from_record(cls, d: dict[str, Any]) -> Job:
        d = dict(d)
        d["samples"] = [Sample(tuple(tail), tuple(cont)) for tail, cont in d["samples"]]
        return cls(**d)


class Trainer:
    def __init__(self, state_dir: Path, engine: Engine, faults: Faults):
        self.state_dir = state_dir
        self.jobs_dir = state_dir / "jobs"
        self.engine = engine
        self.faults = faults
        self.jobs: dict[str, Job] = {}
        self._job_by_key: dict[str, str] = {}
        self._succeeded: list[Job] = []  # in the order they were trained
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._next_trained_seq = 0

    # ---- start-up ------------------------------------------------------------

    def load(self) -> Any:
        """Read the state directory, re-queue unfinished jobs, and return the model
        trained on every job that succeeded."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        self._check_state_file()
        jobs = []
        for path in sorted(self.jobs_dir.glob("*.json")):
            try:
                jobs.append(Job.from_record(json.loads(path.read_text(encoding="utf-8"))))
            except (ValueError, TypeError, KeyError) as e:
                raise StateError(f"{path}: unreadable job record ({e}); move it away to start") from e
        jobs.sort(key=lambda j: j.seq)
        for job in jobs:
            self.jobs[job.job_id] = job
            if job.idempotency_key:
                self._job_by_key[job.idempotency_key] = job.job_id
        succeeded = sorted((j for j in jobs if j.status == SUCCEEDED), key=lambda j: j.trained_seq or 0)
        self._succeeded = list(succeeded)
        self._next_trained_seq = 1 + max((j.trained_seq or 0 for j in succeeded), default=0)
        for job in jobs:
            if job.status in (QUEUED, RUNNING):
                # Interrupted by a restart; training is all-or-nothing, so it just runs again.
                job.status, job.started_at = QUEUED, None
                self._save(job)
                self._queue.put_nowait(job.job_id)
        return self.engine.restore(self._succeeded)

    def _check_state_file(self) -> None:
        path = self.state_dir / "refserver-state.json"
        expected = {"format": STATE_FORMAT, "vocab_fingerprint": self.engine.fingerprint}
        if not path.exists():
            _write_json(path, expected)
            return
        try:
            found = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise StateError(f"{path}: not valid JSON ({e})") from e
        if found != expected:
            raise StateError(
                f"{path} was written by a refserver with a different vocabulary or state format "
                f"({found} != {expected}); its token ids would mean other words. Use a new --state-dir."
            )

    # ---- requests ------------------------------------------------------------

    def submit(
        self, samples: list[Sample], request_hash: str, idempotency_key: str | None, truncated: int = 0
    ) -> tuple[Job, bool]:
        """Return (job, created). A known Idempotency-Key returns its job unchanged.

        Runs without awaiting, so two requests with the same key cannot both create a job."""
        if idempotency_key is not None and idempotency_key in self._job_by_key:
            job = self.jobs[self._job_by_key[idempotency_key]]
            if job.request_hash != request_hash:
                raise IdempotencyConflict(
                    f"Idempotency-Key {idempotency_key!r} was already used for job {job.job_id} with different samples"
                )
            return job, False
        job = Job(
            job_id=f"job-{uuid.uuid4().hex}",
            seq=len(self.jobs) + 1,
            samples=samples,
            request_hash=request_hash,
            idempotency_key=idempotency_key,
            truncated_samples=truncated,
            max_tokens=self.engine.train_context_tokens if truncated else None,
        )
        # Persisted before it is acknowledged, so an accepted job survives a crash.
        self._save(job)
        self.jobs[job.job_id] = job
        if idempotency_key is not None:
            self._job_by_key[idempotency_key] = job.job_id
        self._queue.put_nowait(job.job_id)
        return job, True

    # ---- the background worker -----------------------------------------------

    async def run(self, executor: Executor, on_trained: Callable[[Any], None]) -> None:
        while True:
            job = self.jobs[await self._queue.get()]
            try:
                model = await self._train(job, executor)
                job.status, job.trained_seq = SUCCEEDED, self._next_trained_seq
            except Exception as e:  # a failed job must never stop the worker
                log.warning("training job %s failed: %s", job.job_id, e)
                job.status, job.error, model = FAILED, str(e), None
            job.finished_at = _now()
            try:
                self._save(job)
            except OSError as e:
                # Unrecorded, the job must not count: a restart could not rebuild the model.
                log.error("could not record training job %s: %s", job.job_id, e)
                job.status, job.error, model = FAILED, f"could not record the job: {e}", None
            if model is not None:
                self._next_trained_seq += 1
                self._succeeded.append(job)
                on_trained(model)

    async def _train(self, job: Job, executor: Executor) -> Any:
        settings = self.faults.settings
        await asyncio.sleep(settings.latency_seconds())
        job.status, job.started_at = RUNNING, _now()
        self._save(job)
        await asyncio.sleep(settings.latency_seconds(sum(len(s.continuation) for s in job.samples)))
        call, mode = self.faults.count_call("train_job")
        if mode is not None:
            if mode == "hang":
                await asyncio.sleep(settings.hang_seconds)
            raise RuntimeError(f"injected failure ({mode}) on train_job call {call}")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self.engine.train, job, list(self._succeeded))

    def _save(self, job: Job) -> None:
        _write_json(self.jobs_dir / f"{job.job_id}.json", job.record())


def _write_json(path: Path, data: Any) -> None:
    """Write atomically: a crash leaves the old file or the new one, never half."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
