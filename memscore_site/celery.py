import os

from celery import Celery

from . import broker  # noqa: F401 (registers the embedded broker's URL scheme)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "memscore_site.settings")

app = Celery("memscore")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
