"""The worker's Prometheus metrics (served by the worker's main process, summed over its pool
children: see cutout/monitoring.py)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

SHOTS = Counter("cutout_shots", "Segmentation tasks by outcome (done, failed, busy, already-done, missing)",
                ["outcome"])
FAILURES = Counter("cutout_shot_failures", "Shots recorded as failed, by kind of reason", ["reason"])
RETRIES = Counter("cutout_task_retries", "Transient trouble met by a retry, by error type", ["error"])
STAGE_SECONDS = Histogram("cutout_stage_seconds", "Seconds per stage of one shot", ["stage"],
                          buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
SHOT_SECONDS = Histogram("cutout_shot_seconds", "Seconds from claim to recorded result",
                         buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120))
MODEL = Gauge("cutout_model_loaded", "1 for the model version a worker process runs", ["version"],
              multiprocess_mode="livemax")


def failure_kind(reason: str) -> str:
    """A short, bounded label for a failure reason ("bad input: truncated PNG…" -> "bad input")."""
    head = reason.split(":", 1)[0].strip().lower()
    for kind in ("bad input", "timed out", "internal error", "its worker died"):
        if head.startswith(kind):
            return kind
    return "missing object" if "no longer in the bucket" in reason else "other"


def shot_done(timings: dict, seconds: float) -> None:
    for name, value in timings.items():
        STAGE_SECONDS.labels(name.removesuffix("_s")).observe(value)
    SHOT_SECONDS.observe(seconds)


def model_switched(old: str | None, new: str) -> None:
    if old:
        MODEL.labels(old).set(0)
    MODEL.labels(new).set(1)
