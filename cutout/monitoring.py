"""Prometheus metrics, served on CUTOUT_METRICS_PORT. Each service defines its own metrics
(worker/metrics.py, producer/metrics.py); this module only serves them.

A Celery worker's tasks run in forked pool children, each with its own memory, so the worker
uses prometheus_client's multiprocess mode: every process writes its samples to files in one
directory, and the main process serves their sum. That mode is chosen when prometheus_client
is first imported, so ``prepare_multiprocess`` must run before anything imports it.
"""

from __future__ import annotations

import logging
import os
import tempfile

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def metrics_port() -> int | None:
    from cutout.config import Settings

    return Settings.from_env().metrics_port


def prepare_multiprocess() -> None:
    """For a process that forks workers: a fresh shared directory for every process's samples
    (unless the deployment gives one), set before prometheus_client is imported."""
    if metrics_port() and not os.environ.get(MULTIPROC_ENV):
        os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="cutout-metrics-")


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Serve /metrics on `port` from this process (the sum over all processes in multiprocess mode)."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    registry = REGISTRY
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=addr, registry=registry)
    log.info("metrics on http://%s:%d/metrics", addr, port)


def process_exited(pid: int) -> None:
    """Forget a dead child's live gauges (its counters and histograms keep counting in the sum)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
