"""Access helpers shared by the views: each returns the object or raises.

Every page is behind login (LoginRequiredMiddleware); these add the role
checks. A user without the permission gets 403 (PermissionDenied), a missing
object 404. A state-changing view names its action's permissions to the
helper, e.g. `get_run_for_user(request, pk, "scoring.start_run")`: checked in
one go with the view permission, so the 403 names the role the action needs
(checked one after the other, a user with no role was told "This needs the
viewer role" of an operator's action).
"""

from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404

from scoring import roles
from scoring.models import Agent, Candidate, Memory, ScoringRun, Snapshot, TrainJob


def require_perm(request, *perms):
    """Raise PermissionDenied (403) unless the user holds every one of `perms`;
    its message (shown by templates/403.html) names the role that would."""
    if not request.user.has_perms(perms):
        role = roles.role_for(*perms)
        raise PermissionDenied(f"This needs the {role} role." if role else "")
    return request.user


def get_agent_for_user(request, pk, *action_perms):
    require_perm(request, "scoring.view_agent", *action_perms)
    return get_object_or_404(Agent, pk=pk)


def get_snapshot_for_user(request, pk, *action_perms):
    require_perm(request, "scoring.view_snapshot", *action_perms)
    return get_object_or_404(Snapshot.objects.select_related("agent"), pk=pk)


def get_run_for_user(request, pk, *action_perms):
    require_perm(request, "scoring.view_scoringrun", *action_perms)
    return get_object_or_404(
        ScoringRun.objects.select_related("agent", "snapshot", "created_by", "cancelled_by"), pk=pk
    )


def get_memory_for_user(request, pk, *action_perms):
    require_perm(request, "scoring.view_memory", *action_perms)
    return get_object_or_404(Memory.objects.select_related("agent"), pk=pk)


def get_candidate_for_user(request, pk, *action_perms):
    """A candidate as its page and the review actions use it: without the
    (large) token id lists."""
    require_perm(request, "scoring.view_candidate", *action_perms)
    return get_object_or_404(Candidate.objects.for_page(), pk=pk)


def get_train_job_for_user(request, pk, *action_perms):
    require_perm(request, "scoring.view_trainjob", *action_perms)
    return get_object_or_404(TrainJob.objects.select_related("agent"), pk=pk)
