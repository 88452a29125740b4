# TEMPORARY during the build-out: every route exists so templates can link to
# each other; each page module replaces its placeholder. Deleted before landing.
from django.http import HttpResponse


def todo(request, *args, **kwargs):
    return HttpResponse("not built yet", status=501)
