from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("agents/<int:agent_id>/memories/", todo, name="memory_list"),
    path("memories/<int:pk>/", todo, name="memory_detail"),
]
