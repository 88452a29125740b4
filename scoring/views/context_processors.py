"""What every page's navigation shows about the signed-in user: the section
the page belongs to, how many candidates wait for their review, and their
roles (for the 403 page).

Both are callables, so a page that shows neither (an anonymous login page, an
htmx fragment) never runs their queries; a template calls them at most once
each (django templates call a callable context value).
"""

from functools import cache

from scoring.models import Candidate
from scoring.roles import holds_candidates

# The badge counts up to this many and then says "99+": counting every
# pending candidate took 50-110 ms a page at 100k candidates.
PENDING_BADGE_MAX = 99


# The top bar's section of a page, from its route's name: these names as
# they are, then the first section a part of the name belongs to.
NAMED_SECTIONS = {
    "home": "Home",
    "run_start": "Agents",  # the snapshot page's form (Agents), sent back refused
}
SECTION_PARTS = [
    ("Agents", ("agent", "snapshot", "memory")),
    ("Runs", ("run_", "heatmap")),
    ("Review", ("review", "candidate")),
    ("Training", ("train_",)),
    ("Activity", ("activity",)),
]


def section_of(url_name):
    """The top bar's section of the route named `url_name`, or None (the glossary)."""
    if url_name in NAMED_SECTIONS:
        return NAMED_SECTIONS[url_name]
    return next((section for section, parts in SECTION_PARTS if any(p in url_name for p in parts)), None)


def nav(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    match = getattr(request, "resolver_match", None)

    # A number, or "99+" past PENDING_BADGE_MAX.
    @cache
    def pending_reviews():
        if not holds_candidates(user):  # the queue's "for you": reviewers only
            return 0
        found = Candidate.objects.reviewable_by(user).order_by()[: PENDING_BADGE_MAX + 1].count()
        return f"{PENDING_BADGE_MAX}+" if found > PENDING_BADGE_MAX else found

    @cache
    def user_roles():
        return list(user.groups.order_by("name").values_list("name", flat=True))

    return {"pending_reviews": pending_reviews, "user_roles": user_roles,
            "nav_section": section_of(match.url_name or "") if match else None}
