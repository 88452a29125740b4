from django.urls import path

from ._todo import todo

# Placeholder routes: replace with real views.
urlpatterns = [
    path("runs/<int:pk>/heatmap/", todo, name="heatmap"),
    path("runs/<int:pk>/heatmap.json", todo, name="heatmap_data"),
    path("runs/<int:pk>/heatmap.csv", todo, name="heatmap_csv"),
    path("runs/<int:pk>/cell/<int:memory_id>/<int:response_id>/", todo, name="heatmap_cell"),
]
