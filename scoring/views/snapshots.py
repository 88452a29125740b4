from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("agents/<int:agent_id>/snapshots/upload/", todo, name="snapshot_upload"),
    path("snapshots/<int:pk>/", todo, name="snapshot_detail"),
]
