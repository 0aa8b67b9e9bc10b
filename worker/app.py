"""The worker's Celery app, and the resources each of its processes holds.

TensorFlow, boto3 clients and database engines are created in each pool child after the
fork (worker_process_init), never in the parent: a TensorFlow model built in the parent
hangs every forked child, and a connection shared across a fork is corrupted by both sides.
"""

from __future__ import annotations

import logging
import os
from dataclasses import replace

from celery.signals import setup_logging, worker_init, worker_process_init, worker_process_shutdown

from cutout import db, logs, monitoring
from cutout.config import ConfigError, Settings
from cutout.queue import Wait, make_celery
from worker import settings
from worker.resources import Resources

log = logging.getLogger(__name__)

app = make_celery(settings, "cutout-worker")
app.conf.include = ["worker.tasks"]

_resources: Resources | None = None
_problem = "no worker_process_init yet"
_pool_processes: int | None = None  # set in the main process before the pool forks


def child_threads(settings: Settings, processes: int | None, cores: int) -> int:
    """TensorFlow threads for one pool child: CUTOUT_TF_THREADS, or else the child's share of
    the cores this worker may use, so that the children together never oversubscribe them
    (two children each taking every core run slower than one thread each)."""
    if settings.tf_threads or not processes:
        return settings.tf_threads
    return max(1, cores // processes)


def start_process(resources: Resources | None = None) -> Resources:
    """Set this process's resources: built from the environment in every pool child, or given
    by whoever runs the tasks in its own process (the demo, tests)."""
    global _resources
    if resources is None:
        threads = child_threads(settings, _pool_processes, len(os.sched_getaffinity(0)))
        resources = Resources(replace(settings, tf_threads=threads))
    _resources = resources
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
    logs.configure(loglevel or logging.INFO, settings.log_format)


@worker_init.connect
def _main_process(sender=None, **_):
    global _pool_processes
    _pool_processes = getattr(sender, "concurrency", None)  # the children inherit it
    if settings.metrics_port:
        monitoring.serve(settings.metrics_port)


@worker_process_shutdown.connect
def _child_exited(pid=None, **_):
    monitoring.process_exited(pid or os.getpid())
