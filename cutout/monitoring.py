"""Prometheus metrics, served on CUTOUT_METRICS_PORT. Each service defines its own metrics
(worker/metrics.py, producer/metrics.py); this module serves them, and measures the queue's
depth for `cutout queue-metrics`.

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


def prepare_multiprocess(metrics_port: int | None) -> None:
    """For a process that forks workers: a fresh shared directory for every process's samples
    (unless the deployment gives one), set before prometheus_client is imported, and removed
    when the process that made it exits (anything importing the worker, a `celery inspect`
    healthcheck every minute included, would otherwise leave one behind each time)."""
    if metrics_port and not os.environ.get(MULTIPROC_ENV):
        import atexit
        import shutil

        folder, owner = tempfile.mkdtemp(prefix="cutout-metrics-"), os.getpid()
        os.environ[MULTIPROC_ENV] = folder
        # Forked children inherit the hook; only the process that made the folder removes it.
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(folder, ignore_errors=True))


def serve(port: int, addr: str = "0.0.0.0", registry=None) -> None:
    """Serve /metrics on `port` from a background thread of this process: `registry`, or this
    process's metrics (the sum over all processes in multiprocess mode)."""
    from prometheus_client import REGISTRY, CollectorRegistry, start_http_server

    if registry is None:
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


class QueueDepth:
    """cutout_queue_depth{queue}: messages waiting on the broker, measured at every scrape
    (so it is never stale, and costs one LLEN per queue per scrape)."""

    def __init__(self, settings, queues: list[str]):
        from cutout.queue import make_celery

        # Give up on a dead broker within the scrape, not after kombu's default retries.
        self.app = make_celery(settings, "cutout-queue-metrics")
        self.app.conf.broker_connection_timeout = 3
        self.app.conf.broker_connection_max_retries = 0
        self.queues = queues

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        from cutout.errors import one_line
        from cutout.queue import queue_depth

        depth = GaugeMetricFamily("cutout_queue_depth", "Messages waiting on the broker", labels=["queue"])
        up = GaugeMetricFamily("cutout_queue_broker_up", "1 when the broker answered this scrape")
        try:
            for queue in self.queues:
                depth.add_metric([queue], queue_depth(self.app, queue))
            up.add_metric([], 1)
        except Exception as exc:  # the broker is down: say so in one line, and in the metric
            log.error("queue depth not measured: %s", one_line(exc))
            depth = GaugeMetricFamily("cutout_queue_depth", "Messages waiting on the broker", labels=["queue"])
            up.add_metric([], 0)
        yield depth
        yield up


def serve_queue_depth(settings, port: int, addr: str = "0.0.0.0") -> None:
    """Serve the segmentation queue's depth on `port` (what an autoscaler watches)."""
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(QueueDepth(settings, [settings.queue]))
    serve(port, addr, registry)
