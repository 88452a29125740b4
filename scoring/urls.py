"""Each page module owns its routes; this file only gathers them."""

from .views import (
    activity,
    agents,
    api,
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
    *training.urlpatterns,
    *activity.urlpatterns,
    *api.urlpatterns,
]
