"""The producer's Prometheus metrics (served on CUTOUT_METRICS_PORT by `cutout produce`).
The queue's depth has its own exporter, `cutout queue-metrics` (cutout/monitoring.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LISTED = Counter("cutout_producer_listed", "Objects listed or announced, by how they came", ["source"])
REGISTERED = Counter("cutout_producer_registered", "New or changed objects registered", ["kind"])
REJECTED = Counter("cutout_producer_rejected", "Keys refused (misnamed), first time each")
ENQUEUED = Counter("cutout_producer_enqueued", "Tasks sent", ["task"])
FAILURES = Counter("cutout_producer_failures", "Sweeps or notification reads that failed", ["what"])
SWEEP_SECONDS = Histogram("cutout_producer_sweep_seconds", "Seconds per reconciliation sweep (list, register, enqueue)",
                          buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))


# The model in service on this studio (cutout.trust): what the team's reviews say of the garments
# its rule would release, and whether it releases. NaN while nothing is known.
RELEASE_PRECISION = Gauge("cutout_release_precision", "Share of reviewed would-be releases that were right")
RELEASE_PRECISION_LOW = Gauge("cutout_release_precision_low", "Lower end of that share's 95 % Wilson interval")
RELEASE_MODE = Gauge("cutout_release_mode", "1 while the model in service releases, 0 in shadow mode")


def trust(url: str) -> None:
    """Set the release gauges from the model in service's recorded evidence."""
    from cutout import models
    from cutout.db import session_scope
    from cutout.schema import ModelVersion

    with session_scope(url) as session:
        version_id = models.in_service(session)
        row = session.get(ModelVersion, version_id) if version_id is not None else None
        evidence = dict(row.evidence or {}) if row is not None else {}
        releasing = bool(row.releasing) if row is not None else False
    precision = evidence.get("precision")
    RELEASE_PRECISION.set(float("nan") if precision is None else precision)
    RELEASE_PRECISION_LOW.set(evidence["low"] if evidence.get("reviewed") else float("nan"))
    RELEASE_MODE.set(1 if releasing else 0)


def count(summary: dict, source: str) -> None:
    LISTED.labels(source).inc(summary["listed"])
    REGISTERED.labels("shot").inc(summary["new_shots"])
    REGISTERED.labels("reference").inc(summary["new_references"])
    REJECTED.inc(summary["rejected"])
    ENQUEUED.labels("segment").inc(summary["enqueued"])
    ENQUEUED.labels("score").inc(summary["scoring_enqueued"])
