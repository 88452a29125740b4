"""Celery tasks, one module per part of the work; importing the package registers them all."""

from . import scoring, training  # noqa: F401
