from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("agents/", todo, name="agent_list"),
    path("agents/new/", todo, name="agent_create"),
    path("agents/<int:pk>/", todo, name="agent_detail"),
    path("agents/<int:pk>/edit/", todo, name="agent_edit"),
    path("agents/<int:pk>/token/", todo, name="agent_token"),
]
