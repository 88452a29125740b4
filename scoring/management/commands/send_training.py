"""`manage.py send_training AGENT [--wait]`: what the Training page's Send does
for one agent; the job's id on stdout, its progress (with --wait) on stderr."""

import time

from django.core.management.base import CommandError

from scoring import outbox
from scoring.followups import Followups
from scoring.models import TrainJob
from scoring.tasks.enqueue import enqueue_on_commit

from . import _cli, _runs
from ._cli import plural, stopped_following

# --wait: a job that stays as it is this long (once sent) asks whether beat
# runs: its sweeps, every 10 seconds, re-send a job when due and bring the
# server's news of a job it took.
NO_NEWS_HINT_SECONDS = 60


class Command(_cli.Command):
    help = (
        "Send an agent's approved samples that no job holds yet to its inference server's /train, "
        "as the Training page's Send does: one new train job (never a sample twice), which a Celery "
        "worker posts. Prints the job's id (stdout). Refused, exit 1, when nothing approved is waiting "
        "or the agent is export only (see export_samples)."
    )

    def add_arguments(self, parser):
        parser.add_argument("agent", help="the agent, by id or name")
        parser.add_argument(
            "--wait", action="store_true",
            help="follow the job until it succeeds or fails, its state on stderr at each change; exit 1 "
                 "if it fails. A worker sends it; celery beat's poll (every 10 s) brings the server's "
                 "news. Ctrl-C stops following, not the job",
        )

    def handle(self, *args, agent, wait, **options):
        chosen = _cli.agent_arg(agent)
        try:
            job = outbox.send_to_training(chosen, None, actor_name=_runs.ACTOR)
        except outbox.NoTrainingTarget as e:
            raise CommandError(" ".join(e.messages)) from None
        if job is None:
            raise CommandError(outbox.nothing_to_send_message(chosen))
        sending = enqueue_on_commit(Followups(train_jobs=[job.pk]))
        self.out(str(job.pk))
        self.err(f"sent {plural(job.samples.count(), 'approved sample')} of {chosen.name} as {job}")
        if sending.failed:
            self.err(outbox.broker_down_message(job))
        if wait:
            job = self.follow(job)
            if job.status == TrainJob.Status.FAILED:
                raise CommandError(f"{job} failed: {job.last_error or 'no reason given'}")

    def follow(self, job, interval=0.5, clock=time.monotonic):
        """Show the job's state at each change until it ends. Ctrl-C (SIGTERM, SIGHUP) stops following."""
        last, hinted, since = None, set(), clock()
        try:
            while True:
                job.refresh_from_db()
                line = f"{job} {job.get_status_display()}" + (f": {job.last_error}" if job.last_error else "")
                if line != last:
                    self.err(line)
                    last, since = line, clock()
                if not job.is_active:
                    return job
                self.hint(job, clock() - since, hinted)
                time.sleep(interval)
        except KeyboardInterrupt as e:
            job.refresh_from_db()
            raise stopped_following(e, f"{job}, {job.get_status_display()}", "see the Training page") from None

    def hint(self, job, waited, hinted):
        """Once each: a job no worker takes; a job that stays as it is with no
        beat (the sweep that re-sends a job when due and asks the server about it)."""
        if job.status == TrainJob.Status.PENDING and job.attempts == 0:
            if waited >= _runs.QUEUED_HINT_SECONDS and "worker" not in hinted:
                hinted.add("worker")
                self.err(f"still waiting to be sent after {_runs.QUEUED_HINT_SECONDS:g} s: is a Celery worker "
                         "running? (make demo starts one; else `celery -A memscore_site worker`)")
        elif waited >= NO_NEWS_HINT_SECONDS and "beat" not in hinted:
            hinted.add("beat")
            self.err(f"no change for {NO_NEWS_HINT_SECONDS:g} s: celery beat asks the server about the job and "
                     "sends it again when due, every 10 s; is beat running? (make demo starts it; else "
                     "`celery -A memscore_site beat`)")
