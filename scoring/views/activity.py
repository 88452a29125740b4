"""The activity log: who did what, when, filtered and paginated."""

from django.apps import apps
from django.core.paginator import Paginator
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse

from scoring.access import require_perm
from scoring.filters import (
    ActivityFilter,
    filter_notice,
    filtered,
    typed_choices,
    typed_values,
    unread,
)
from scoring.models import Activity, Agent
from scoring.models.candidates import hidden_from
from scoring.models.review import DECISION_VERBS

from . import display

# Where a target of each type is shown, so the log links to it.
TARGET_ROUTES = {
    "agent": "agent_detail",
    "snapshot": "snapshot_detail",
    "scoringrun": "run_detail",
    "memory": "memory_detail",
    "candidate": "candidate_detail",
    "trainjob": "train_job_detail",
}


# What others did on a candidate that blind review keeps from a reviewer who
# has not decided it yet (the candidate page hides the same). A status change
# and a reversal say how others decided too: a candidate a reversal sends back
# to pending has entries of how it had settled, their actor's deciding vote
# and the reversing decision among them.
BLIND_VERBS = [*DECISION_VERBS.values(), "commented on", "edited", "status changed", "reversed the decision on"]


def blind_hidden(user):
    """Entries of others' decisions and comments on the candidates blind
    review hides from `user` (models.candidates.hidden_from); None when
    nothing is hidden (the common case costs one small query)."""
    hidden = hidden_from(user) if Agent.objects.filter(blind_review=True).exists() else None
    if hidden is None:
        return None
    # The log keeps target ids as text: compared in SQL, not as a list in Python.
    keys = hidden.annotate(key=Cast("pk", CharField())).values("key")
    return Q(target_type="candidate", target_id__in=keys, verb__in=BLIND_VERBS) & ~Q(actor=user)


def visible_to(user):
    """The log as `user` may see it: blind review's hidden entries left out
    (the log page and the home page's recent activity show the same)."""
    return _leaving_out(blind_hidden(user))


def _leaving_out(hidden):
    visible = Activity.objects.select_related("actor")
    return visible if hidden is None else visible.exclude(hidden)


def activity_list(request):
    require_perm(request, "scoring.view_activity")
    hidden = blind_hidden(request.user)
    visible = _leaving_out(hidden)
    filterset = ActivityFilter(request.GET or None, queryset=visible)
    if hidden is not None:
        _offer_only_what_is_seen(filterset.form, visible)
    # A bad filter (an unknown verb, dates the wrong way round) matches
    # nothing and is named above the list, as on the other lists.
    page = Paginator(filtered(filterset), 50).get_page(request.GET.get("page"))
    page.object_list = describe(page.object_list)
    typed = typed_values(filterset)
    fields = filterset.form.fields
    return render(
        request,
        "scoring/activity_list.html",
        {
            "form": filterset.form,
            "page": page,
            "filtered": filterset.is_bound,
            # The form shows what was typed, as the other lists do: a select
            # keeps an unknown value, a date it cannot read is shown as text.
            "selected": typed,
            "verbs": typed_choices(_choices(fields["verb"]), typed["verb"]),
            "target_types": typed_choices(_choices(fields["target_type"]), typed["target_type"]),
            "unread": unread(filterset),
            **filter_notice(request, filterset),
        },
    )


# The choices blind review can leave without an entry this user sees: chosen,
# they could only say "Nothing matches".
COULD_BE_HIDDEN = {"verb": BLIND_VERBS, "target_type": ["candidate"]}


def _offer_only_what_is_seen(form, visible):
    """Drop from the filters' choices (so from their menus, and as a typed
    filter "not one of the choices") a verb or target type whose every entry
    blind review hides from this user. Asked one choice at a time: each
    stops at the first entry seen (both columns are indexed), where one
    query for all would read every decision in the log."""
    for name, could_be_hidden in COULD_BE_HIDDEN.items():
        field = form.fields[name]
        field.choices = [
            (value, text) for value, text in field.choices
            if value not in could_be_hidden or visible.filter(**{name: value}).exists()
        ]


def _choices(field):
    """A choice filter's choices without its empty one (the select has its own)."""
    return [(value, text) for value, text in field.choices if value != ""]


def describe(entries):
    """Ready the entries for a page: each with its target's link, its target
    named once ("candidate 4", not "candidate candidate 4"), its details in words."""
    entries = list(entries)
    gone = _gone_targets(entries)
    for entry in entries:
        entry.target_gone = (entry.target_type, entry.target_id) in gone
        entry.target_url = "" if entry.target_gone else _target_url(entry)
        label = entry.target_label
        # A target's own name usually starts with its type already.
        entry.target_kind = "" if entry.target_repr.lower().startswith(label) else label
        entry.details = display.activity_details(entry)
    return entries


def _gone_targets(entries):
    """{(type, id)} of the linkable targets no longer there (deleted since):
    one query per type, so their entries link no 404."""
    wanted = {}
    for entry in entries:
        if entry.target_type in TARGET_ROUTES and entry.target_id.isdigit():
            wanted.setdefault(entry.target_type, set()).add(entry.target_id)
    gone = set()
    for target_type, ids in wanted.items():
        model = apps.get_model("scoring", target_type)
        there = {str(pk) for pk in model.objects.filter(pk__in=[int(i) for i in ids]).values_list("pk", flat=True)}
        gone.update((target_type, i) for i in ids - there)
    return gone


def _target_url(entry):
    route = TARGET_ROUTES.get(entry.target_type)
    if not route or not entry.target_id:
        return ""
    try:
        return reverse(route, args=[entry.target_id])
    except NoReverseMatch:
        return ""


urlpatterns = [path("activity/", activity_list, name="activity_list")]
