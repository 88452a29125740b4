from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("runs/", todo, name="run_list"),
    path("snapshots/<int:snapshot_id>/runs/new/", todo, name="run_start"),
    path("runs/<int:pk>/", todo, name="run_detail"),
    path("runs/<int:pk>/progress/", todo, name="run_progress"),
    path("runs/<int:pk>/cancel/", todo, name="run_cancel"),
]
