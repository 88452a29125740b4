"""The pages, one module per part of the product; each module lists its own routes
(`urlpatterns`), which scoring/urls.py gathers."""
