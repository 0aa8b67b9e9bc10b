"""Celery tasks: thin wrappers that pass ids (never pixels) to worker.job. What is retried and
what is given up is cutout.queue.CutoutTask's decision; giving up on a shot records it as
failed with the reason, so no shot is silently lost:

- done, or failed with a readable reason (bad input, missing object): acknowledged, never retried;
- transient S3/database/broker trouble: retried with exponential backoff for as long as it
  lasts, holding the shot's claim; never acknowledged before the outcome is recorded;
- the model cannot be loaded (a deployment problem): retried every minute, the shot stays queued;
- the soft time limit or anything unexpected: recorded as failed with the error.
"""

from __future__ import annotations

import logging

from cutout.queue import SCORE_SEGMENTATION, SEGMENT_SHOT, CutoutTask
from worker import job, metrics
from worker.app import app, process_resources

log = logging.getLogger(__name__)


class ShotTask(CutoutTask):
    item_name = "shot_id"

    def give_up(self, reason: str, shot_id: int) -> str:
        job.mark_failed(process_resources(), shot_id, reason)
        metrics.SHOTS.labels("failed").inc()
        return "failed"

    def before_retry(self, exc: BaseException, countdown: int, shot_id: int) -> None:
        metrics.RETRIES.labels(type(exc).__name__).inc()
        # Hold the claim through the wait, or the producer would see the lease run out and
        # send the shot again; if the database is what is down, the producer cannot either.
        try:
            job.extend_lease(process_resources(), shot_id, self.request.id, countdown)
        except Exception as exc:
            log.debug("shot %s: lease not extended: %r", shot_id, exc)


@app.task(base=ShotTask, name=SEGMENT_SHOT, bind=True)
def segment_shot(self, shot_id: int) -> str:
    outcome = job.segment_shot(process_resources(), shot_id, token=self.request.id)
    metrics.SHOTS.labels(outcome).inc()
    return outcome


class ScoreTask(CutoutTask):
    item_name = "segmentation_id"


@app.task(base=ScoreTask, name=SCORE_SEGMENTATION)
def score_segmentation(segmentation_id: int) -> float | None:
    return job.score_segmentation(process_resources(), segmentation_id)
