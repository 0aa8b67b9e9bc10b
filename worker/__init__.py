"""worker: the Celery app that segments shots. Start it with `celery -A worker worker`."""

from worker.app import app  # noqa: F401  (celery -A worker finds it here)
