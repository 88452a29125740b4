"""The admin panel: every model registered, secrets hidden, text escaped, and
bulk actions going through the model verbs (reviews and activity recorded)."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from scoring.models import (
    Activity,
    Agent,
    Candidate,
    CellScore,
    Comment,
    Memory,
    MemoryScore,
    Node,
    Review,
    ScoreCall,
    ScoringRun,
    Snapshot,
    TrainJob,
    TrainSample,
)
from scoring.models.runs import Mode, RunStatus
from tests.matrix_data import matrix_run

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
SECRET = "sk-very-secret-key-42"


def staff(username, role=None, superuser=False):
    user = User.objects.create_user(username, password="pw-for-tests-123", is_staff=True,
                                    is_superuser=superuser)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return user, client


@pytest.fixture
def agent(db):
    agent = Agent.objects.create(name="poc", base_url="http://127.0.0.1:9/v1", model="m", api_key=SECRET)
    agent.issue_ingest_token()
    return agent


@pytest.fixture
def run(agent):
    return matrix_run(
        agent, [[1.0, -0.7], [0.0, 0.2]], keys=[f"evil/{XSS}", "plain"],
        memory_texts=[f"memory {XSS}", "plain"], responses=[f"answer {XSS}", "fine"],
    )


@pytest.fixture
def candidates(run):
    responses = list(run.snapshot.nodes.filter(role="assistant").order_by("index"))
    return [
        Candidate.objects.create(
            agent=run.agent, snapshot=run.snapshot, response=node, response_key=f"t{i}",
            divergence=2.0 + i, response_text=f"candidate {i} {XSS}",
            context_ids=[1, 2, 3], continuation_ids=[4, 5],
        )
        for i, node in enumerate(responses)
    ]


def test_every_model_is_registered():
    models = list(apps.get_app_config("scoring").get_models())
    for model in models:
        assert admin.site.is_registered(model), model


def test_every_changelist_and_change_page_renders_escaped(agent, run, candidates):
    _, client = staff("root", superuser=True)
    job = TrainJob.objects.create(agent=agent, status=TrainJob.Status.FAILED, last_error=XSS)
    TrainSample.objects.create(job=job, candidate=candidates[0], context_ids=[1], continuation_ids=[2], live=False)
    Activity.record(None, "commented", candidates[0], actor_name=f"agent:{XSS}", text=XSS)
    candidates[0].add_comment(User.objects.get(username="root"), f"comment {XSS}")
    objects = {
        Agent: agent, Snapshot: run.snapshot, Node: Node.objects.filter(snapshot=run.snapshot).first(),
        Memory: run.memories[0], ScoringRun: run, ScoreCall: ScoreCall.objects.filter(run=run).first(),
        CellScore: CellScore.objects.filter(run=run).first(), Candidate: candidates[0],
        Comment: Comment.objects.first(), TrainJob: job, TrainSample: job.samples.first(),
        Activity: Activity.objects.first(),
        MemoryScore: MemoryScore.objects.create(memory=run.memories[0], run=run, score=1.0, weight=1.0),
    }
    candidates[0].decide(User.objects.get(username="root"), "approve")
    objects[Review] = Review.objects.first()
    for model, obj in objects.items():
        info = (model._meta.app_label, model._meta.model_name)
        listing = client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert listing.status_code == 200, model
        assert XSS not in listing.text, model
        page = client.get(reverse("admin:{}_{}_change".format(*info), args=[obj.pk]))
        assert page.status_code == 200, model
        assert XSS not in page.text, model
    # Spot checks that the text is there, escaped.
    for model in (Memory, Candidate, Activity):
        info = (model._meta.app_label, model._meta.model_name)
        assert ESCAPED in client.get(reverse("admin:{}_{}_changelist".format(*info))).text, model
    assert ESCAPED in client.get(reverse("admin:scoring_memory_change", args=[run.memories[0].pk])).text


def test_the_agent_form_never_shows_the_api_key(agent):
    _, client = staff("root", superuser=True)
    page = client.get(reverse("admin:scoring_agent_change", args=[agent.pk]))
    assert page.status_code == 200
    assert SECRET not in page.text
    assert agent.ingest_token_hash not in page.text
    assert 'name="ingest_token_hash"' not in page.text
    # The key field is write-only: a password input that never renders a value.
    field = page.text[page.text.index('name="api_key"') - 200:page.text.index('name="api_key"') + 200]
    assert 'type="password"' in field and "value=" not in field
    listing = client.get(reverse("admin:scoring_agent_changelist"))
    assert SECRET not in listing.text and agent.ingest_token_hash not in listing.text


def _agent_form(agent, **changes):
    data = {
        "name": agent.name, "base_url": agent.base_url, "model": agent.model, "api_key_env": "",
        "message_template": agent.message_template, "memory_template": agent.memory_template,
        "score_concurrency": agent.score_concurrency, "score_shards": agent.score_shards,
        "request_timeout": agent.request_timeout, "incremental_enabled": "on",
        "incremental_max_age": agent.incremental_max_age,
        "incremental_response_window": agent.incremental_response_window,
        "incremental_batch": agent.incremental_batch, "weight_alpha": agent.weight_alpha,
        "finetune_count": agent.finetune_count, "finetune_min_divergence": agent.finetune_min_divergence,
        "required_approvals": agent.required_approvals, "api_key": "",
        "backend": agent.backend, "priority": "", "prefix_ids": "[]", "end_of_turn": agent.end_of_turn,
        "training_target": agent.training_target,
    }
    data.update(changes)
    return data


def test_a_blank_key_field_keeps_the_key_and_a_new_one_replaces_it(agent):
    root, client = staff("root", superuser=True)
    url = reverse("admin:scoring_agent_change", args=[agent.pk])

    response = client.post(url, _agent_form(agent, model="m2"))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.model == "m2" and agent.api_key == SECRET
    assert not Activity.objects.filter(verb="set API key").exists()
    entry = Activity.objects.get(verb="changed in admin", target_id=str(agent.pk), actor=root)
    assert entry.detail["changes"]["model"].endswith("→ m2")

    response = client.post(url, _agent_form(agent, api_key="sk-new"))
    assert response.status_code == 302
    agent.refresh_from_db()
    assert agent.api_key == "sk-new"
    entry = Activity.objects.get(verb="set API key")
    assert "sk-new" not in str(entry.detail)
    assert "sk-new" not in client.get(url).text

    response = client.post(url, _agent_form(agent, clear_api_key="on"))
    agent.refresh_from_db()
    assert agent.api_key == ""


def test_bulk_approve_goes_through_decide(candidates):
    reviewer, client = staff("rita", "reviewer")
    response = client.post(reverse("admin:scoring_candidate_changelist"), {
        "action": "approve_selected", "_selected_action": [c.pk for c in candidates], "index": 0,
    })
    assert response.status_code == 302
    for candidate in candidates:
        candidate.refresh_from_db()
        assert candidate.status == Candidate.Status.APPROVED
        assert Review.objects.get(candidate=candidate).reviewer == reviewer
    assert Activity.objects.filter(verb="approved", actor=reviewer).count() == 2


def test_bulk_reject_asks_for_a_comment_first(candidates):
    reviewer, client = staff("rita", "reviewer")
    url = reverse("admin:scoring_candidate_changelist")
    ids = [c.pk for c in candidates]

    page = client.post(url, {"action": "reject_selected", "_selected_action": ids, "index": 0})
    assert page.status_code == 200
    assert "Why are they rejected?" in page.text
    assert XSS not in page.text and "candidate 0 " + ESCAPED in page.text
    assert not Review.objects.exists()

    # Without a comment: asked again, nothing decided.
    page = client.post(url, {"action": "reject_selected", "_selected_action": ids, "apply": "1", "comment": " "})
    assert page.status_code == 200 and "This field is required" in page.text
    assert not Review.objects.exists()

    response = client.post(url, {"action": "reject_selected", "_selected_action": ids, "apply": "1",
                                 "comment": "Off topic for training."})
    assert response.status_code == 302
    for candidate in candidates:
        candidate.refresh_from_db()
        assert candidate.status == Candidate.Status.REJECTED
        review = Review.objects.get(candidate=candidate)
        assert (review.reviewer, review.decision, review.comment) == (reviewer, "reject", "Off topic for training.")
    assert Activity.objects.filter(verb="rejected", actor=reviewer).count() == 2


@pytest.mark.parametrize("action", ["approve_selected", "reject_selected"])
def test_bulk_decisions_ask_before_reversing_a_settled_candidate(candidates, action):
    settled, fresh = candidates
    reviewer, client = staff("rita", "reviewer")
    # Settled the other way, by her own earlier vote, which this one would replace.
    settled.decide(reviewer, "reject" if action == "approve_selected" else "approve", "no")
    assert settled.status != Candidate.Status.PENDING
    url = reverse("admin:scoring_candidate_changelist")
    post = {"action": action, "_selected_action": [settled.pk, fresh.pk], "index": 0}
    if action == "reject_selected":
        post.update(apply="1", comment="Off topic.")

    page = client.post(url, post)
    # The unsettled one is decided; the settled one is asked about, unchanged.
    assert page.status_code == 200 and 'id="reversals"' in page.text
    assert f"Decided 1 candidate: #{fresh.pk} " in page.text
    assert "This candidate is already settled" in page.text
    assert f"#{settled.pk} is already" in page.text
    settled_before = settled.status
    settled.refresh_from_db()
    assert settled.status == settled_before
    assert Review.objects.filter(candidate=fresh, reviewer=reviewer).exists()
    earlier = "reject" if action == "approve_selected" else "approve"
    assert Review.objects.get(candidate=settled, reviewer=reviewer).decision == earlier

    # Confirmed on that page: reversed, and logged so.
    confirm = {"action": action, "_selected_action": [settled.pk], "confirm_reversal": "1"}
    if action == "reject_selected":
        confirm.update(apply="1", comment="Off topic.")
    done = client.post(url, confirm, follow=True)
    assert f"Reversed the decision on 1 candidate: #{settled.pk} " in done.text
    settled.refresh_from_db()
    assert settled.status == (Candidate.Status.APPROVED if action == "approve_selected" else Candidate.Status.REJECTED)
    assert Activity.objects.filter(verb="reversed the decision on", actor=reviewer).count() == 1


def test_a_bulk_vote_that_changes_nothing_says_so(candidates):
    settled, fresh = candidates
    other, _ = staff("rob", "reviewer")
    settled.decide(other, "reject", "no")  # one rejection settles it
    reviewer, client = staff("rita", "reviewer")
    page = client.post(reverse("admin:scoring_candidate_changelist"), {
        "action": "approve_selected", "_selected_action": [settled.pk, fresh.pk], "index": 0,
    }, follow=True)
    settled.refresh_from_db()
    assert settled.status == Candidate.Status.REJECTED
    assert f"Decided 1 candidate: #{fresh.pk} " in page.text
    assert (f"Your vote was recorded on the others. Unchanged, still {settled.get_status_display()}: #{settled.pk}."
            in page.text)
    assert "Approved 2" not in page.text


def test_a_viewer_cannot_decide_from_the_admin(candidates):
    _, client = staff("vera", "viewer")
    response = client.post(reverse("admin:scoring_candidate_changelist"), {
        "action": "approve_selected", "_selected_action": [c.pk for c in candidates], "index": 0,
    }, follow=True)
    assert response.status_code == 200
    assert not Review.objects.exists()
    assert Candidate.objects.filter(status=Candidate.Status.PENDING).count() == 2
    listing = client.get(reverse("admin:scoring_candidate_changelist"))
    assert "approve_selected" not in listing.text


def test_cancel_runs_goes_through_cancel(agent, run):
    active = ScoringRun.objects.create(agent=agent, snapshot=run.snapshot, mode=Mode.FULL,
                                       status=RunStatus.RUNNING, calls_total=3)
    operator, client = staff("otto", "operator")
    response = client.post(reverse("admin:scoring_scoringrun_changelist"), {
        "action": "cancel_runs", "_selected_action": [active.pk, run.pk], "index": 0,
    }, follow=True)
    assert "Cancelled 1 run(s)." in response.text
    assert "1 run(s) had already ended." in response.text
    active.refresh_from_db()
    run.refresh_from_db()
    assert active.status == RunStatus.CANCELLED and active.cancelled_by == operator
    assert run.status == RunStatus.SUCCEEDED
    assert Activity.objects.filter(verb="cancelled run", target_id=str(active.pk), actor=operator).count() == 1


def test_a_viewer_cannot_cancel_runs(agent, run):
    active = ScoringRun.objects.create(agent=agent, snapshot=run.snapshot, mode=Mode.FULL,
                                       status=RunStatus.RUNNING, calls_total=3)
    _, client = staff("vera", "viewer")
    client.post(reverse("admin:scoring_scoringrun_changelist"), {
        "action": "cancel_runs", "_selected_action": [active.pk], "index": 0,
    })
    active.refresh_from_db()
    assert active.status == RunStatus.RUNNING


def test_retry_goes_through_retry(agent, candidates):
    operator, client = staff("otto", "operator")
    unknown = TrainJob.objects.create(agent=agent, status=TrainJob.Status.UNKNOWN,
                                      retry_after=timezone.now() + timezone.timedelta(hours=1))
    done = TrainJob.objects.create(agent=agent, status=TrainJob.Status.SUCCEEDED, server_job_id="j1")
    response = client.post(reverse("admin:scoring_trainjob_changelist"), {
        "action": "retry_jobs", "_selected_action": [unknown.pk, done.pk], "index": 0,
    }, follow=True)
    assert "Retried 1 job(s)." in response.text
    assert "only failed or unknown jobs are retried" in response.text
    unknown.refresh_from_db()
    assert unknown.retry_after is None
    assert Activity.objects.filter(verb="retried", target_id=str(unknown.pk), actor=operator).count() == 1
    assert not Activity.objects.filter(verb="retried", target_id=str(done.pk)).exists()


def test_retry_of_a_failed_job_makes_a_new_one(agent, candidates):
    operator, client = staff("otto", "operator")
    reviewer, _ = staff("rita", "reviewer")
    candidates[0].decide(reviewer, "approve")
    failed = TrainJob.objects.create(agent=agent, status=TrainJob.Status.FAILED)
    TrainSample.objects.create(job=failed, candidate=candidates[0], context_ids=[1], continuation_ids=[2])
    client.post(reverse("admin:scoring_trainjob_changelist"), {
        "action": "retry_jobs", "_selected_action": [failed.pk], "index": 0,
    })
    new_job = TrainJob.objects.exclude(pk=failed.pk).get()
    assert new_job.created_by == operator
    assert list(new_job.samples.values_list("candidate_id", flat=True)) == [candidates[0].pk]
    assert not failed.samples.filter(live=True).exists()


def test_the_activity_log_is_read_only(agent):
    _, client = staff("root", superuser=True)
    entry = Activity.record(None, "imported snapshot", agent, actor_name="agent:poc")
    assert client.get(reverse("admin:scoring_activity_add")).status_code == 403
    url = reverse("admin:scoring_activity_change", args=[entry.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'name="verb"' not in page.text
    client.post(url, {"actor_name": "forged", "verb": "nothing"})
    entry.refresh_from_db()
    assert entry.actor_name == "agent:poc"
    assert client.post(reverse("admin:scoring_activity_delete", args=[entry.pk]), {"post": "yes"}).status_code == 403
    assert Activity.objects.filter(pk=entry.pk).exists()


def test_admin_posts_need_the_csrf_token(candidates):
    user = User.objects.create_user("rita", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name="reviewer"))
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("admin:scoring_candidate_changelist"), {
        "action": "approve_selected", "_selected_action": [c.pk for c in candidates], "index": 0,
    })
    assert response.status_code == 403
    assert not Review.objects.exists()


def test_the_change_page_of_an_agent_without_a_stored_key_opens_and_saves(db):
    # The form has no "remove the stored key" box when no key is stored: the
    # admin's fieldsets must not ask for it (it answered 500, a KeyError).
    keyless = Agent.objects.create(name="keyless", base_url="http://127.0.0.1:9/v1", model="m")
    _, client = staff("root", superuser=True)
    url = reverse("admin:scoring_agent_change", args=[keyless.pk])

    page = client.get(url)
    assert page.status_code == 200
    assert 'name="clear_api_key"' not in page.text and 'name="api_key"' in page.text

    assert client.post(url, _agent_form(keyless, model="m2")).status_code == 302
    keyless.refresh_from_db()
    assert keyless.model == "m2" and keyless.api_key == ""

    # With a key stored, the box is there to remove it.
    assert client.post(url, _agent_form(keyless, api_key="sk-new")).status_code == 302
    assert 'name="clear_api_key"' in client.get(url).text


def test_decisions_what_was_sent_to_training_and_a_runs_parts_are_never_deleted_by_hand(agent, run, candidates):
    root, client = staff("root", superuser=True)
    alice, _ = staff("alice", role="reviewer")
    review = Review.objects.create(candidate=candidates[0], reviewer=alice, decision="approve")
    comment = Comment.objects.create(candidate=candidates[0], author=alice, text="fine")
    job = TrainJob.objects.create(agent=agent, status=TrainJob.Status.UNKNOWN)
    sample = TrainSample.objects.create(job=job, candidate=candidates[0], context_ids=[1], continuation_ids=[2])
    for obj in (review, comment, job, sample):
        url = reverse(f"admin:scoring_{obj._meta.model_name}_delete", args=[obj.pk])
        assert client.post(url, {"post": "yes"}).status_code == 403, obj._meta.model_name
        assert type(obj).objects.filter(pk=obj.pk).exists()
    # Nor through a cascade: a reviewer with decisions is deactivated, not
    # deleted, and a candidate reviewed or sent to training stays, with its snapshot.
    page = client.post(reverse("admin:auth_user_delete", args=[alice.pk]), {"post": "yes"})
    assert "Cannot delete user" in page.text and User.objects.filter(pk=alice.pk).exists()
    for model, pk in (("candidate", candidates[0].pk), ("snapshot", run.snapshot.pk)):
        page = client.post(reverse(f"admin:scoring_{model}_delete", args=[pk]), {"post": "yes"})
        assert page.status_code == 403 or "memscore keeps these by design" in page.text
    assert Snapshot.objects.filter(pk=run.snapshot.pk).exists() and Review.objects.filter(pk=review.pk).exists()
    assert TrainSample.objects.filter(pk=sample.pk).exists()


def test_a_run_deleted_in_the_admin_is_in_the_activity_log(agent, run):
    root, client = staff("root", superuser=True)
    client.post(reverse("admin:scoring_scoringrun_delete", args=[run.pk]), {"post": "yes"})
    assert not ScoringRun.objects.filter(pk=run.pk).exists()
    entry = Activity.objects.get(verb="deleted in admin")
    assert entry.actor_name == "root" and entry.target_type == "scoringrun"


def test_a_snapshot_and_a_memory_are_shown_as_imported_not_edited(agent, run):
    root, client = staff("root", superuser=True)
    snapshot, memory = run.snapshot, Memory.objects.filter(agent=agent).first()
    taken, text = snapshot.taken_at, memory.text
    client.post(reverse("admin:scoring_snapshot_change", args=[snapshot.pk]), {"taken_at_0": "2031-01-01",
                                                                              "taken_at_1": "00:00:00"})
    client.post(reverse("admin:scoring_memory_change", args=[memory.pk]), {"text": "forged"})
    snapshot.refresh_from_db()
    memory.refresh_from_db()
    assert (snapshot.taken_at, memory.text) == (taken, text)
    assert client.get(reverse("admin:scoring_memory_change", args=[memory.pk])).status_code == 200


def test_a_part_of_a_snapshot_or_a_run_is_deleted_only_with_its_whole(agent, run):
    root, client = staff("root", superuser=True)
    memory = Memory.objects.filter(agent=agent).first()
    parts = (memory, run.snapshot.nodes.first(), run.calls.first(), run.cells.first())
    for obj in parts:
        name = obj._meta.model_name
        assert client.post(reverse(f"admin:scoring_{name}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
        assert type(obj).objects.filter(pk=obj.pk).exists(), name
        changelist = client.get(reverse(f"admin:scoring_{name}_changelist")).text
        assert 'value="delete_selected"' not in changelist, name
    assert "deletelink" not in client.get(reverse("admin:scoring_memory_change", args=[memory.pk])).text
    # The whole still goes, and takes them with it.
    client.post(reverse("admin:scoring_scoringrun_delete", args=[run.pk]), {"post": "yes"})
    assert not ScoreCall.objects.filter(run_id=run.pk).exists() and not CellScore.objects.filter(run_id=run.pk).exists()


def test_the_approvals_column_counts_approvals_of_the_text_to_be_trained(candidates):
    # Rita approved the response, then rob edited it: one approval (his) is of the edit.
    first, second = candidates
    rita, _ = staff("rita", "reviewer")
    rob, _ = staff("rob", "reviewer")
    first.decide(rita, "approve")
    first.approve_edited(rob, "Rob's corrected answer.", [1, 2, 3])
    second.decide(rita, "approve")
    _, client = staff("root", superuser=True)
    page = client.get(reverse("admin:scoring_candidate_changelist"))
    counted = {c.pk: c.n_approvals for c in page.context["cl"].result_list}
    assert counted == {first.pk: 1, second.pk: 1}


def test_a_run_still_going_is_not_deleted_but_an_ended_one_is(agent, run):
    active = ScoringRun.objects.create(agent=agent, snapshot=run.snapshot, mode=Mode.FULL,
                                       status=RunStatus.RUNNING, calls_total=3)
    _, client = staff("root", superuser=True)

    assert client.get(reverse("admin:scoring_scoringrun_delete", args=[active.pk])).status_code == 403
    # Django asks of each object a bulk deletion takes: the batch is refused, nothing deleted.
    response = client.post(reverse("admin:scoring_scoringrun_changelist"), {
        "action": "delete_selected", "_selected_action": [active.pk, run.pk], "post": "yes",
    })
    assert response.status_code == 403
    assert ScoringRun.objects.count() == 2
    response = client.post(reverse("admin:scoring_scoringrun_changelist"), {
        "action": "delete_selected", "_selected_action": [run.pk], "post": "yes",
    })
    assert list(ScoringRun.objects.values_list("pk", flat=True)) == [active.pk]


def test_deleting_a_snapshot_gives_each_memory_the_text_of_the_newest_one_left(agent, run):
    older = run.snapshot
    memory = Memory.objects.get(agent=agent, key="plain")
    newer = Snapshot.objects.create(agent=agent, taken_at=older.taken_at + timezone.timedelta(days=1),
                                    source=Snapshot.Source.API)
    Node.objects.create(snapshot=newer, section="conversation", index=0, memory_key="plain",
                        text="plain, as the newer snapshot has it", token_ids=[1], n_tokens=1)
    Memory.objects.filter(pk=memory.pk).update(text="plain, as the newer snapshot has it")  # as its import did
    _, client = staff("root", superuser=True)

    client.post(reverse("admin:scoring_snapshot_delete", args=[newer.pk]), {"post": "yes"})

    memory.refresh_from_db()
    assert not Snapshot.objects.filter(pk=newer.pk).exists()
    assert memory.text == Node.objects.get(snapshot=older, memory_key="plain").text


def test_role_and_account_changes_reach_the_activity_log(db):
    root, client = staff("root", superuser=True)
    alice, _ = staff("alice", "reviewer")
    operator = Group.objects.get(name="operator")
    url = reverse("admin:auth_user_change", args=[alice.pk])
    joined = timezone.localtime(alice.date_joined)
    response = client.post(url, {
        "username": "alice", "first_name": "", "last_name": "", "email": "",
        "is_active": "on", "groups": [operator.pk, Group.objects.get(name="reviewer").pk],
        "date_joined_0": joined.strftime("%Y-%m-%d"), "date_joined_1": joined.strftime("%H:%M:%S"),
        "initial-date_joined_0": joined.strftime("%Y-%m-%d"), "initial-date_joined_1": joined.strftime("%H:%M:%S"),
    })
    assert response.status_code == 302, response.text[:3000]

    entry = Activity.objects.get(verb="changed user in admin", actor=root)
    assert entry.target_repr == "alice"
    assert entry.detail["roles"] == "reviewer → operator, reviewer"
    assert entry.detail["is_staff"] is False  # no longer staff: said, as the roles are
    page = client.get(reverse("activity_list")).text
    assert "reviewer → operator, reviewer" in page


def test_a_refused_deletion_says_why_not_that_the_account_lacks_permission(candidates):
    candidates[0].decide(User.objects.create_user("rita"), "skip")
    _, client = staff("root", superuser=True)

    page = client.get(reverse("admin:scoring_candidate_delete", args=[candidates[0].pk])).text

    assert "memscore keeps these by design" in page and "untick <em>Active</em>" in page
    assert "your account doesn" not in page
    page = client.post(reverse("admin:scoring_candidate_changelist"), {
        "action": "delete_selected", "_selected_action": [candidates[0].pk]}).text
    assert "memscore keeps these by design" in page and "your account doesn" not in page


def test_reviews_read_as_what_they_are_and_list_newest_first(candidates):
    rita = User.objects.create_user("rita")
    candidates[0].decide(rita, "skip")
    _, client = staff("root", superuser=True)

    page = client.get(reverse("admin:scoring_candidate_change", args=[candidates[0].pk])).text
    assert f"skip by rita on candidate {candidates[0].pk}" in page and "Review object" not in page
    page = client.get(reverse("admin:scoring_review_changelist") + "?reviewer__id__exact=" + str(rita.pk)).text
    assert "rita" in page
