"""Background work for training: sending jobs to /train and following them there."""

from celery import shared_task

from scoring import outbox


@shared_task(ignore_result=True)
def dispatch_train_jobs(job_id=None):
    """Send train jobs that are due: every 10 seconds from beat, and right after
    a send or a retry commits (the nudge, with that job's id: see
    scoring.tasks.enqueue).

    Each job is claimed by a conditional update, so concurrent or redelivered
    runs of this task never post a job twice at the same time; a job is only
    ever posted with its own Idempotency-Key.
    """
    outbox.dispatch(job_id=job_id)


@shared_task(ignore_result=True)
def poll_train_jobs():
    """Every 10 seconds from beat: ask the server about jobs it accepted."""
    outbox.poll_all()
