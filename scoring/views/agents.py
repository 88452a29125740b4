"""Agents: the list, settings (create/edit), a detail page, API tokens, and
checking the connection to the agent's inference server."""

import time

from django.contrib import messages
from django.db.models import Count, IntegerField, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_http_methods, require_POST

from scoring.access import get_agent_for_user, require_perm
from scoring.checks import call_timeout, check_agent
from scoring.forms import AgentForm
from scoring.forms.changes import changes
from scoring.models import Activity, Agent, Memory, ScoringRun, Snapshot

SNAPSHOTS_SHOWN = 50
RUNS_SHOWN = 10


def _count_of(queryset):
    """A per-agent count as a subquery: joining three related tables would multiply rows."""
    counted = (
        queryset.filter(agent=OuterRef("pk"))
        .order_by()
        .values("agent")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def agent_list(request):
    require_perm(request, "scoring.view_agent")
    latest = Snapshot.objects.filter(agent=OuterRef("pk")).order_by("-taken_at", "-id")
    agents = Agent.objects.annotate(
        memory_count=_count_of(Memory.objects.all()),
        snapshot_count=_count_of(Snapshot.objects.all()),
        active_run_count=_count_of(ScoringRun.objects.active()),
        latest_snapshot_id=Subquery(latest.values("pk")[:1]),
        latest_snapshot_at=Subquery(latest.values("taken_at")[:1]),
    )
    return render(request, "scoring/agent_list.html", {"agents": agents})


def agent_create(request):
    require_perm(request, "scoring.add_agent")
    form = AgentForm(request.POST if request.method == "POST" else None, user=request.user)
    if form.is_bound and form.is_valid():
        agent = form.save(commit=False)
        agent.created_by = request.user
        agent.save()
        Activity.record(request.user, "created agent", agent)
        messages.success(request, f"Agent {agent.name} created. Issue an API token to let it send snapshots.")
        for warning in form.warnings():
            messages.warning(request, warning)
        return redirect("agent_detail", pk=agent.pk)
    return render(request, "scoring/agent_form.html", {"form": form, "agent": None})


def agent_edit(request, pk):
    require_perm(request, "scoring.change_agent")
    agent = get_agent_for_user(request, pk)
    form = AgentForm(request.POST if request.method == "POST" else None, instance=agent, user=request.user)
    if form.is_bound and form.is_valid():
        # Names only, never values: the API key must not reach the activity log.
        changed = sorted(name for name in form.changed_data if name != "clear_api_key")
        if form.cleaned_data.get("clear_api_key"):
            changed.append("api_key")
        agent = form.save()
        if form.dropped_stored_key:
            changed.append("api_key")
        if form.dropped_key_env:
            changed.append("api_key_env")
        Activity.record(request.user, "changed agent", agent, fields=changed, changes=changes(form))
        messages.success(request, f"Settings of {agent.name} saved.")
        for warning in form.warnings():
            messages.warning(request, warning)
        if form.key_dropped:
            messages.warning(request, form.key_dropped_message(agent))
        return redirect("agent_detail", pk=agent.pk)
    return render(request, "scoring/agent_form.html", {"form": form, "agent": agent})


def agent_detail(request, pk):
    agent = get_agent_for_user(request, pk)
    return render(request, "scoring/agent_detail.html", _detail_context(request, agent))


@require_POST
def agent_check(request, pk):
    """Ask the agent's server the checks' questions and show the answers
    (nothing is written: a POST only because it makes outside calls)."""
    require_perm(request, "scoring.change_agent")
    agent = get_agent_for_user(request, pk)
    checks = check_agent(agent)
    if request.htmx:
        context = {"agent": agent, "checks": checks, "can_check": True, "check_timeout": call_timeout(agent)}
        return render(request, "scoring/agent_detail.html#checks", context)
    context = _detail_context(request, agent)
    context["checks"] = checks
    return render(request, "scoring/agent_detail.html", context)


def _detail_context(request, agent):
    return {
        "agent": agent,
        "snapshots": list(agent.snapshots.all()[:SNAPSHOTS_SHOWN]),
        "snapshot_total": agent.snapshots.count(),
        "runs": list(agent.runs.select_related("snapshot")[:RUNS_SHOWN]),
        "memory_count": agent.memories.count(),
        "key_source": agent.key_source(),
        # Which variable holds the key is for those who set agents up; others
        # read "from the environment".
        "shows_key_env": request.user.has_perm("scoring.change_agent"),
        "can_change": request.user.has_perm("scoring.change_agent"),
        "can_check": request.user.has_perm("scoring.change_agent"),
        "check_timeout": call_timeout(agent),
        "can_upload": request.user.has_perm("scoring.add_snapshot"),
    }


# The session keys under which a token just issued waits to be shown, once:
# when it was issued, whether it replaced one, and its hash (to tell later
# whether the token no one saw still works). Never the token itself: the
# session table kept it for the session's life (two weeks) whenever the
# redirect was not followed.
NEW_TOKEN_KEY = "memscore:new-token:"
# The token itself waits in a cookie for the GET after the POST: signed,
# HttpOnly, SameSite=Strict, on the token page's path only, for this long.
TOKEN_COOKIE = "memscore-new-token-"
TOKEN_SHOWN_FOR = 5 * 60


def _token_key(agent):
    return f"{NEW_TOKEN_KEY}{agent.pk}"


def _is_fresh(waiting):
    """Whether a session entry {"issued", ...} is still within its time (an
    entry from before the timestamp, or of another shape, is not)."""
    return isinstance(waiting, dict) and isinstance(waiting.get("issued"), (int, float)) and (
        time.time() - waiting["issued"] <= TOKEN_SHOWN_FOR)


def _drop_stale_tokens(session):
    """Any agent's entry that waited past its time: its token can no longer be shown."""
    for key in [k for k in session.keys() if k.startswith(NEW_TOKEN_KEY)]:
        if not _is_fresh(session[key]):
            del session[key]


@require_http_methods(["GET", "POST"])
def agent_token(request, pk):
    """Post/Redirect/Get: the POST issues a token (revoking the old one),
    notes when in the session and hands the token to the browser in a
    cookie; the GET that follows shows it and forgets both, if it comes
    within TOKEN_SHOWN_FOR (after that, the page says the token expired).
    Reloading the page, or going back to it, issues nothing: it then says
    whether the agent has a token. The token is never in a URL, a log or
    the session store."""
    require_perm(request, "scoring.change_agent")
    agent = get_agent_for_user(request, pk)
    page = reverse("agent_token", args=[agent.pk])
    cookie = f"{TOKEN_COOKIE}{agent.pk}"
    if request.method == "POST" and agent.ingest_token_hash and request.POST.get("revoke") != "yes":
        # A new token revokes the one the agent uses: asked for in so many words first.
        messages.error(request, "Nothing was issued: tick “Revoke the current token” to replace it (the agent's "
                                "snapshot posts fail until it has the new one).")
        return redirect("agent_token", pk=agent.pk)
    if request.method == "POST":
        _drop_stale_tokens(request.session)
        replaced = bool(agent.ingest_token_hash)
        token = agent.issue_ingest_token()
        request.session[_token_key(agent)] = {
            "issued": time.time(), "replaced": replaced, "hash": agent.ingest_token_hash}
        Activity.record(request.user, "issued API token for", agent)
        response = redirect("agent_token", pk=agent.pk)
        response.set_signed_cookie(cookie, token, salt=cookie, max_age=TOKEN_SHOWN_FOR, path=page,
                                   secure=request.is_secure(), httponly=True, samesite="Strict")
        return response
    waiting = request.session.pop(_token_key(agent), None)
    _drop_stale_tokens(request.session)
    token = request.get_signed_cookie(cookie, default=None, salt=cookie, max_age=TOKEN_SHOWN_FOR) if (
        _is_fresh(waiting)) else None
    state, unseen_still_works = _token_state(agent, waiting, token)
    context = {"agent": agent, "token": token, "state": state, "unseen_still_works": unseen_still_works,
               "api_url": request.build_absolute_uri(reverse("api_snapshots")),
               # None for an entry from before the page said so: it then says "if any".
               "replaced": waiting.get("replaced") if token is not None else None,
               "shown_minutes": TOKEN_SHOWN_FOR // 60}
    response = render(request, "scoring/agent_token.html", context)
    # Shown once: no cache may keep a copy of the page with the token.
    response["Cache-Control"] = "no-store"
    response.delete_cookie(cookie, path=page, samesite="Strict")
    return response


def _token_state(agent, waiting, token):
    """What the token page says, and for "expired" whether the token no one
    saw is still the agent's (one issued since, in another tab, replaces it):
    "shown" (just issued, shown now, once); "expired" (issued, not fetched in
    time); "issued" (the agent has a token, not shown now); "none" (the agent
    has no token)."""
    if token is not None:
        return "shown", False
    if waiting is not None:
        unseen = waiting.get("hash") if isinstance(waiting, dict) else None
        return "expired", bool(unseen) and unseen == agent.ingest_token_hash
    return ("issued" if agent.ingest_token_hash else "none"), False


urlpatterns = [
    path("agents/", agent_list, name="agent_list"),
    path("agents/new/", agent_create, name="agent_create"),
    path("agents/<int:pk>/", agent_detail, name="agent_detail"),
    path("agents/<int:pk>/edit/", agent_edit, name="agent_edit"),
    path("agents/<int:pk>/token/", agent_token, name="agent_token"),
    path("agents/<int:pk>/check/", agent_check, name="agent_check"),
]
