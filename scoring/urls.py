"""Each page module owns its routes; this file only gathers them."""

from .views import (
    activity,
    agents,
    api,
    candidates,
    heatmap,
    home,
    memories,
    review,
    runs,
    snapshots,
    training,
)

urlpatterns = [
    *home.urlpatterns,
    *agents.urlpatterns,
    *snapshots.urlpatterns,
    *runs.urlpatterns,
    *heatmap.urlpatterns,
    *memories.urlpatterns,
    *review.urlpatterns,
    *candidates.urlpatterns,
    *training.urlpatterns,
    *activity.urlpatterns,
    *api.urlpatterns,
]
