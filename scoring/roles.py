"""The team's roles, as Django groups. Each role includes the one before it."""

VIEWER, REVIEWER, OPERATOR = "viewer", "reviewer", "operator"

SCORING_MODELS = [
    "activity", "agent", "candidate", "cellscore", "comment", "memory", "memoryscore",
    "node", "review", "scorecall", "scoringrun", "snapshot", "trainjob", "trainsample",
]

ROLE_PERMISSIONS = {
    VIEWER: [f"view_{m}" for m in SCORING_MODELS],
    REVIEWER: ["review_candidate", "add_review", "add_comment"],
    OPERATOR: [
        "start_run", "send_training", "add_agent", "change_agent", "add_snapshot",
    ],
}


def permissions_for(role):
    """Codenames for a role, with those of the roles below it."""
    order = [VIEWER, REVIEWER, OPERATOR]
    codenames = []
    for name in order[: order.index(role) + 1]:
        codenames += ROLE_PERMISSIONS[name]
    return codenames


def role_for(*perms):
    """The lowest role holding every one of `perms` ("scoring.codename"), or None."""
    codenames = {perm.split(".", 1)[-1] for perm in perms}
    for role in (VIEWER, REVIEWER, OPERATOR):
        if codenames <= set(permissions_for(role)):
            return role
    return None


def holds_candidates(user):
    """Whether the review queue holds what `user` opens, and so what "awaiting
    your review" counts: members of the reviewer role only (an operator's
    permissions include deciding, but opening the queue to look must not
    keep a candidate from the team)."""
    # Kept on the user for the request: the navigation, home and list pages each ask.
    found = getattr(user, "_holds_candidates", None)
    if found is None:
        found = user._holds_candidates = (
            user.has_perm("scoring.review_candidate") and user.groups.filter(name=REVIEWER).exists()
        )
    return found


def sync_role_groups(Group, Permission):
    """Make the role groups hold exactly their permissions.

    Takes the model classes so the data migration can pass its historical
    models; tests call it after a transactional flush has emptied auth tables.
    """
    for role in (VIEWER, REVIEWER, OPERATOR):
        group, _ = Group.objects.get_or_create(name=role)
        codenames = permissions_for(role)
        perms = list(Permission.objects.filter(content_type__app_label="scoring", codename__in=codenames))
        missing = set(codenames) - {p.codename for p in perms}
        if missing:
            raise RuntimeError(f"permissions missing for role {role}: {sorted(missing)}")
        group.permissions.set(perms)
