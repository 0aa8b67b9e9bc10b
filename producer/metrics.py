"""The producer's Prometheus metrics (served on CUTOUT_METRICS_PORT by `cutout produce`).
The queue's depth has its own exporter, `cutout queue-metrics` (cutout/monitoring.py)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

LISTED = Counter("cutout_producer_listed", "Objects listed or announced, by how they came", ["source"])
REGISTERED = Counter("cutout_producer_registered", "New or changed objects registered", ["kind"])
REJECTED = Counter("cutout_producer_rejected", "Keys refused (misnamed), first time each")
ENQUEUED = Counter("cutout_producer_enqueued", "Tasks sent", ["task"])
FAILURES = Counter("cutout_producer_failures", "Sweeps or notification reads that failed", ["what"])
SWEEP_SECONDS = Histogram("cutout_producer_sweep_seconds", "Seconds per reconciliation sweep (list, register, enqueue)",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))


def count(summary: dict, source: str) -> None:
    LISTED.labels(source).inc(summary["listed"])
    REGISTERED.labels("shot").inc(summary["new_shots"])
    REGISTERED.labels("reference").inc(summary["new_references"])
    REJECTED.inc(summary["rejected"])
    ENQUEUED.labels("segment").inc(summary["enqueued"])
    ENQUEUED.labels("score").inc(summary["scoring_enqueued"])
