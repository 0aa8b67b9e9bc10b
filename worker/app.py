"""The worker's Celery app. TensorFlow, boto3 clients and database engines are created in
each child on first use (cutout.pipeline.context), never in the parent before fork: a
TensorFlow model built in the parent hangs every forked child."""

from __future__ import annotations

from celery.signals import worker_process_init

from cutout.config import Settings
from cutout.queue import make_celery

app = make_celery(Settings.from_env(), "cutout-worker")
app.conf.include = ["worker.tasks"]


@worker_process_init.connect
def _fresh_child(**_):
    # Connections inherited through fork are shared with the parent; drop them unused.
    from cutout import db

    db.dispose_all()
