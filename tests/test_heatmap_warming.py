"""A finished full run's heatmap payload is packed before anyone opens it."""

import pytest
from django.core.cache import cache

from scoring.engine import run_inline, start_run
from scoring.followups import Followups
from scoring.heatmap.payload import cache_key
from scoring.tasks.enqueue import enqueue
from scoring.tasks.runs import warm_heatmap
from tests.engine_support import make_snapshot


@pytest.mark.django_db(transaction=True)
def test_it_packs_the_heatmap_of_a_finished_full_run(agent):
    snapshot = make_snapshot(agent)
    run = start_run(snapshot, "full")
    run_inline(run)
    run.refresh_from_db()
    assert run.status == "succeeded"
    cache.delete(cache_key(run))

    warm_heatmap(run.pk)

    assert cache.get(cache_key(run)) is not None


@pytest.mark.django_db
def test_it_leaves_an_active_run_alone(agent):
    snapshot = make_snapshot(agent)
    run = start_run(snapshot, "full")

    warm_heatmap(run.pk)

    assert cache.get(cache_key(run)) is None


@pytest.mark.django_db(transaction=True)
def test_it_warms_the_cache_as_a_full_run_ends(agent):
    from memscore_site.celery import app

    snapshot = make_snapshot(agent)
    run = start_run(snapshot, "full")
    followups = Followups()
    run = run_inline(run, followups=followups)
    assert followups.heatmaps == [run.pk]
    # The end of the run asks for the warming task; run it in place.
    app.conf.task_always_eager = True
    try:
        enqueue(followups)
    finally:
        app.conf.task_always_eager = False

    assert cache.get(cache_key(run)) is not None
