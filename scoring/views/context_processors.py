"""What every page's navigation shows about the signed-in user: how many
candidates wait for their review, and their roles (for the 403 page).

Both are callables, so a page that shows neither (an anonymous login page, an
htmx fragment) never runs their queries; a template calls them at most once
each (django templates call a callable context value).
"""

from functools import cache

from scoring.models import Candidate


def nav(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}

    @cache
    def pending_reviews():
        if not user.has_perm("scoring.review_candidate"):
            return 0
        return Candidate.objects.reviewable_by(user).count()

    @cache
    def user_roles():
        return list(user.groups.order_by("name").values_list("name", flat=True))

    return {"pending_reviews": pending_reviews, "user_roles": user_roles}
