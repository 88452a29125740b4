"""Each page module owns its routes; this file only gathers them."""

from .views import (
    activity,
    agents,
    agreement,
    api,
    candidates,
    compare,
    glossary,
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
    *compare.urlpatterns,
    *glossary.urlpatterns,
    *memories.urlpatterns,
    *review.urlpatterns,
    *agreement.urlpatterns,
    *candidates.urlpatterns,
    *training.urlpatterns,
    *activity.urlpatterns,
    *api.urlpatterns,
]
