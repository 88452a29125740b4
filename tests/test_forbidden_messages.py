"""A user with no role, refused an action, is told the role the action needs
(not "viewer", the role of merely seeing the object)."""

import pytest
from candidate_factory import make_approved, make_candidate
from django.urls import reverse

from scoring.outbox import send_to_training


@pytest.mark.parametrize("name", ["candidate_decide", "candidate_comment", "candidate_edit"])
def test_a_review_action_names_the_reviewer_role(cast, agent, name):
    c = make_candidate(agent)
    r = cast.client_for(cast.outsider).post(reverse(name, args=[c.pk]), {"decision": "approve"})
    assert r.status_code == 403
    assert "This needs the reviewer role." in r.text


@pytest.mark.parametrize("name,role", [("train_job_retry", "operator"), ("train_job_cancel", "operator"),
                                       ("train_job_rescore", "operator")])
def test_a_training_action_names_the_role_it_needs(cast, agent, name, role):
    make_approved(agent, 1)
    job = send_to_training(agent, cast.operator)
    r = cast.client_for(cast.outsider).post(reverse(name, args=[job.pk]))
    assert r.status_code == 403
    assert f"This needs the {role} role." in r.text


@pytest.mark.parametrize("name", ["run_cancel", "run_retry", "run_exact_top"])
def test_a_run_action_names_the_operator_role(cast, agent, name):
    from scoring.engine import start_run
    from tests.engine_support import make_snapshot

    run = start_run(make_snapshot(agent), "full")
    r = cast.client_for(cast.outsider).post(reverse(name, args=[run.pk]))
    assert r.status_code == 403
    assert "This needs the operator role." in r.text
