"""The producer's loop: sweep the bucket, register, enqueue what is due; sleep; repeat.

With CUTOUT_EVENTS_QUEUE_URL (an SQS queue, or MinIO's Redis list) it also listens to the
store's notifications in between: an announced shot is registered and enqueued at once, and
the sweep every CUTOUT_POLL_SECONDS (the first one at start) is the reconciliation that
catches whatever no event announced."""

from __future__ import annotations

import logging
import signal
import time

from cutout import monitoring
from cutout.config import Settings
from cutout.errors import describe
from cutout.queue import SCORE_SEGMENTATION, SEGMENT_SHOT, make_celery, queue_depth
from cutout.storage import storage_from_settings
from producer import metrics, sweep
from producer.events import events_from_settings

log = logging.getLogger(__name__)


class Producer:
    def __init__(self, settings: Settings):
        self.settings = settings.require("database_url", "broker_url", "bucket")
        self.storage = storage_from_settings(settings)
        self.app = make_celery(settings, "cutout-producer")
        self.events = events_from_settings(settings) if settings.events_queue_url else None
        self._stop = False

    def _send(self, task_name: str):
        def send(item_id: int) -> None:
            self.app.send_task(task_name, args=[item_id], queue=self.settings.queue)
        return send

    def sweep_once(self) -> dict:
        with metrics.SWEEP_SECONDS.time():
            found = sweep.register(self.settings.database_url, self.storage)
            return self._enqueue(found, "sweep")

    def listen_once(self, wait_seconds: float) -> dict | None:
        """Register and enqueue what the next notifications announce (None if none came)."""
        objects, handles = self.events.receive(wait_seconds)
        if not handles:
            return None
        found = sweep.register_objects(self.settings.database_url, self.storage.bucket, objects)
        summary = self._enqueue(found, "events")
        self.events.acknowledge(handles)  # only once registered: a crash before this re-delivers them
        return summary

    def _enqueue(self, found, what: str) -> dict:
        url = self.settings.database_url
        depth = queue_depth(self.app, self.settings.queue)
        shots = sweep.enqueue_shots(url, self._send(SEGMENT_SHOT), self.settings.requeue_after_seconds,
                                    queue_empty=depth == 0, max_attempts=self.settings.max_attempts)
        scores = sweep.enqueue_scoring(url, self._send(SCORE_SEGMENTATION))
        summary = {"listed": found.seen, "new_shots": found.shots, "new_references": found.references,
                   "rejected": found.rejected, "enqueued": shots, "scoring_enqueued": scores, "queue_depth": depth}
        metrics.count(summary, what)
        metrics.trust(url)
        log.info("%s: %s", what, summary)
        return summary

    def _log_failure(self, what: str, exc: Exception, then: str) -> None:
        """One line for an operational error (S3, the database or Redis is down); a bug, or
        anything with CUTOUT_DEBUG, keeps its traceback."""
        metrics.FAILURES.labels(what).inc()
        message = describe(exc, self.settings)
        if message is None or self.settings.debug:
            log.exception("%s failed; %s", what, then)
        else:
            log.error("%s failed: %s; %s", what, message, then)

    def run_forever(self) -> None:
        def stop(signum, frame):
            log.info("signal %s: stopping after this sweep", signum)
            self._stop = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if self.settings.metrics_port:
            monitoring.serve(self.settings.metrics_port)
        failures = 0
        while not self._stop:
            started = time.monotonic()
            wait = self.settings.poll_seconds
            try:
                self.sweep_once()
                failures = 0
            except Exception as exc:
                # S3, the database or Redis is down: one line, back off (up to 5 minutes), never exit.
                failures += 1
                wait = min(self.settings.poll_seconds * 2 ** (failures - 1), max(300.0, self.settings.poll_seconds))
                self._log_failure("sweep", exc, f"next try in {wait:.0f} s")
            while not self._stop and (left := wait - (time.monotonic() - started)) > 0:
                if self.events is None:
                    time.sleep(min(0.5, left))
                    continue
                try:
                    self.listen_once(min(left, 5.0))  # short waits, so a stop signal is heard soon
                except Exception as exc:
                    self._log_failure("reading notifications", exc, "the next sweep catches up")
                    time.sleep(min(5.0, max(left, 0)))
