"""The worker's Celery app, and the resources each of its processes holds.

TensorFlow, boto3 clients and database engines are created in each pool child after the
fork (worker_process_init), never in the parent: a TensorFlow model built in the parent
hangs every forked child, and a connection shared across a fork is corrupted by both sides.
"""

from __future__ import annotations

import logging

from celery.signals import setup_logging, worker_init, worker_process_init, worker_process_shutdown

from cutout import db, logs, monitoring
from cutout.config import ConfigError, Settings
from cutout.queue import Wait, make_celery
from worker.resources import Resources

log = logging.getLogger(__name__)

app = make_celery(Settings.from_env(), "cutout-worker")
app.conf.include = ["worker.tasks"]

_resources: Resources | None = None
_problem = "no worker_process_init yet"


def start_process(resources: Resources | None = None) -> Resources:
    """Set this process's resources: built from the environment in every pool child, or given
    by whoever runs the tasks in its own process (the demo, tests)."""
    global _resources
    _resources = resources or Resources(Settings.from_env())
    return _resources


def process_resources() -> Resources:
    if _resources is None:
        # A deployment problem (bad settings): keep the shot queued, say why every minute.
        raise Wait(f"worker process not started: {_problem}")
    return _resources


@worker_process_init.connect
def _start_child(**_):
    global _problem
    db.dispose_all()  # connections inherited through fork belong to the parent
    try:
        start_process()
    except ConfigError as exc:
        _problem = str(exc)
        log.error("worker process cannot start: %s", exc)


@setup_logging.connect
def _logging(loglevel=None, **_):
    # Our format (CUTOUT_LOG_FORMAT) for Celery's lines and ours alike, instead of Celery's own.
    logs.configure(loglevel or logging.INFO)


@worker_init.connect
def _serve_metrics(**_):
    port = Settings.from_env().metrics_port
    if port:
        monitoring.serve(port)


@worker_process_shutdown.connect
def _child_exited(pid=None, **_):
    import os

    monitoring.process_exited(pid or os.getpid())
