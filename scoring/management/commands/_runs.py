"""What the scoring commands share: finding a snapshot, following a run, reporting it."""

import threading
import time

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError

from scoring.engine import run_inline, start_run
from scoring.models import Candidate, Snapshot
from scoring.models.runs import Mode, RunStatus

ACTOR = "command line"


def get_snapshot(snapshot_id):
    snapshot = Snapshot.objects.select_related("agent").filter(pk=snapshot_id).first()
    if snapshot is None:
        raise CommandError(f"no snapshot with id {snapshot_id}")
    return snapshot


def start(snapshot, mode, params, *, enqueue):
    try:
        return start_run(snapshot, mode, params=params, enqueue=enqueue, actor_name=ACTOR)
    except ValidationError as e:
        problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in e.message_dict.items())
        raise CommandError(f"cannot start the run: {problems}") from None


def progress_line(run):
    return (f"run {run.pk} {run.get_status_display()}: {run.calls_done + run.calls_failed}/"
            f"{run.calls_total} calls ({run.calls_failed} failed), {run.tokens_scored} tokens")


def follow(run, write, *, interval=0.5, while_alive=None):
    """Print a progress line at each change until the run ends (or while_alive stops)."""
    last = None
    while True:
        run.refresh_from_db()
        line = progress_line(run)
        if line != last:
            write(line)
            last = line
        if not run.is_active or (while_alive is not None and not while_alive()):
            return run
        time.sleep(interval)


def run_here(run, write):
    """run_inline in a thread while this one prints progress."""
    failure = []

    def work():
        try:
            run_inline(run)
        except BaseException as e:  # shown to the user below
            failure.append(e)

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    follow(run, write, while_alive=thread.is_alive)
    thread.join()
    if failure:
        raise CommandError(f"run {run.pk} stopped: {failure[0]!r}")
    run.refresh_from_db()
    return follow(run, write)


def report(run, write):
    """The run's findings in words; CommandError when it did not succeed."""
    result = run.result or {}
    if run.mode == Mode.MEMORY and result.get("importance") is not None:
        write(f"importance of {result['key']}: {result['importance']:.3f} over {result['responses']} responses")
    elif run.mode == Mode.INCREMENTAL:
        for s in result.get("scored", []):
            write(f"{s['key']}: score {s['score']:.3f}, weight {s['weight']:.3f}")
        for s in result.get("skipped", []):
            write(f"{s['key']}: skipped ({s['reason']})")
    elif run.mode == Mode.FULL and "memories" in result:
        write(f"{result['memories']} memories, {result['cells']} cells")
    elif run.mode == Mode.FINETUNE:
        report_candidates(run, write)
    if run.status != RunStatus.SUCCEEDED:
        raise CommandError(f"run {run.pk} {run.get_status_display()}: {run.error or 'no reason given'}")


def report_candidates(run, write):
    ids = (run.result or {}).get("candidates", [])
    candidates = Candidate.objects.in_bulk(ids)
    write(f"{len(ids)} candidates ({(run.result or {}).get('new', 0)} new)")
    for pk in ids:
        c = candidates[pk]
        start = " ".join(c.response_text.split())[:70]
        extra = f"  [{c.get_status_display()}]" if c.status != Candidate.Status.PENDING else ""
        if c.alternate_status == Candidate.AlternateStatus.FAILED:
            extra += f"  [alternate failed: {c.alternate_error[:80]}]"
        write(f"{c.pk}\t{c.divergence:.3f}\t{start}{extra}")
