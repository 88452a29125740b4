from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("api/v1/snapshots", todo, name="api_snapshots"),
]
