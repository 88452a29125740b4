"""The scoring engine: planning a run into rows, claimed execution, results.

`start_run(snapshot, mode, params=..., by=...)` validates and plans a run
and creates its rows; the caller sends it to the workers with
`scoring.tasks.enqueue.enqueue_on_commit(Followups(runs=[run.pk]))`.
`run_inline(run)` does a run's work in this process (tests, the CLI). The
engine never sends anything itself: what should follow is returned as
Followups.
"""

from django.db import connection, transaction

from scoring import modes
from scoring.context import Outline
from scoring.models import Activity, ScoreCall, ScoringRun

from . import alternates, results
from .executor import Executor

__all__ = ["start_run", "run_inline"]


def start_run(snapshot, mode, *, params=None, by=None, actor_name=None):
    """Validate, plan and create a run with all its calls (in one transaction).

    Raises django.core.exceptions.ValidationError naming the bad field
    (mode, key, count, ...). `by` is the user who starts it (None for beat
    or the command line, then named by actor_name in the activity log).
    Nothing is sent to the workers: the caller enqueues the run.
    """
    user = by if getattr(by, "is_authenticated", False) else None
    scoring_mode = modes.get(mode)
    with transaction.atomic():
        cleaned = scoring_mode.clean_params(snapshot.agent, params)
        plan = scoring_mode.plan(snapshot, Outline(snapshot), cleaned)
        run = ScoringRun.objects.create(
            agent_id=snapshot.agent_id,
            snapshot=snapshot,
            mode=mode,
            params=plan.params,
            calls_total=len(plan.calls),
            created_by=user,
            result=plan.notes or None,
        )
        _create_calls(run, plan.calls)
        Activity.record(by, "started run", run, actor_name=actor_name, mode=mode, params=plan.params)
    return run


def _create_calls(run, specs):
    ScoreCall.objects.create_for(run, specs)


def run_inline(run, *, threads=None, followups=None):
    """Do a run's work in this process, then its alternates; returns the run, refreshed.

    Inside a transaction (other threads could not see its rows) the calls are
    made one at a time in this thread. `followups`, a Followups, gets what is
    left for workers (a heatmap to pack); the alternates are generated here.
    """
    run = ScoringRun.objects.select_related("agent", "snapshot").get(pk=run.pk)
    if connection.in_atomic_block:
        threads = 0
    elif threads is None:
        threads = run.agent.score_concurrency
    left = Executor(run, threads=threads).execute()
    # A mode that adds calls as results come (the groups mode's stage 2) asks
    # for the run to be sent again: the executor may have left before them.
    while run.pk in left.runs:
        left.runs = [pk for pk in left.runs if pk != run.pk]
        left.add(Executor(run, threads=threads).execute())
    left.add(results.finish_locked(run.pk))
    alternates.generate_pending(run)
    if followups is not None:
        left.alternates = []
        followups.add(left)
    run.refresh_from_db()
    return run
