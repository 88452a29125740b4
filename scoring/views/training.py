from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("training/", todo, name="train_job_list"),
    path("training/send/", todo, name="train_send"),
    path("training/<uuid:pk>/", todo, name="train_job_detail"),
    path("training/<uuid:pk>/retry/", todo, name="train_job_retry"),
    path("training/<uuid:pk>/rescore/", todo, name="train_job_rescore"),
]
