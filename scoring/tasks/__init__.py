"""Celery tasks, one module per part of the work; importing the package registers them all.

The only package that knows Celery: everything else returns a Followups and
an entry point hands it to enqueue.enqueue_on_commit (or enqueue).
"""

from . import runs, training  # noqa: F401
