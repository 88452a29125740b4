from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("review/", todo, name="review_queue"),
    path("candidates/", todo, name="candidate_list"),
    path("candidates/<int:pk>/", todo, name="candidate_detail"),
    path("candidates/<int:pk>/decide/", todo, name="candidate_decide"),
    path("candidates/<int:pk>/comment/", todo, name="candidate_comment"),
    path("candidates/<int:pk>/edit/", todo, name="candidate_edit"),
    path("candidates/export.jsonl", todo, name="candidate_export"),
]
