"""The producer's loop: sweep the bucket, register, enqueue what is due; sleep; repeat."""

from __future__ import annotations

import logging
import signal
import time

from cutout.config import Settings
from cutout.queue import SCORE_SEGMENTATION, SEGMENT_SHOT, make_celery
from cutout.storage import storage_from_settings
from producer import sweep

log = logging.getLogger(__name__)


class Producer:
    def __init__(self, settings: Settings):
        self.settings = settings.require("database_url", "broker_url", "bucket")
        self.storage = storage_from_settings(settings)
        self.app = make_celery(settings, "cutout-producer")
        self._stop = False

    def _send(self, task_name: str):
        def send(item_id: int) -> None:
            self.app.send_task(task_name, args=[item_id], queue=self.settings.queue)
        return send

    def sweep_once(self) -> dict:
        url = self.settings.database_url
        found = sweep.register(url, self.storage)
        shots = sweep.enqueue_shots(url, self._send(SEGMENT_SHOT), self.settings.requeue_after_seconds)
        scores = sweep.enqueue_scoring(url, self._send(SCORE_SEGMENTATION))
        summary = {"listed": found.seen, "new_shots": found.shots, "new_references": found.references,
                   "rejected": found.rejected, "enqueued": shots, "scoring_enqueued": scores}
        log.info("sweep: %s", summary)
        return summary

    def run_forever(self) -> None:
        def stop(signum, frame):
            log.info("signal %s: stopping after this sweep", signum)
            self._stop = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while not self._stop:
            started = time.monotonic()
            try:
                self.sweep_once()
            except Exception:
                # S3, the database or Redis is down: log and try again next round, never exit.
                log.exception("sweep failed; retrying in %.0f s", self.settings.poll_seconds)
            while not self._stop and time.monotonic() - started < self.settings.poll_seconds:
                time.sleep(0.5)
