"""Celery tasks: thin wrappers that pass ids (never pixels) to cutout.pipeline.

Outcomes:
- done, or failed with a readable reason (bad input, missing object): acknowledged, never retried;
- transient S3/database trouble: retried with exponential backoff, then recorded as failed;
- the model cannot be loaded (a deployment problem): retried every minute, the shot stays queued;
- anything unexpected: recorded as failed with the error, so no shot is silently lost.
"""

from __future__ import annotations

import logging

from celery.exceptions import SoftTimeLimitExceeded

from cutout import pipeline
from cutout.queue import SCORE_SEGMENTATION, SEGMENT_SHOT
from worker.app import app

log = logging.getLogger(__name__)
MAX_RETRIES = 6


def _backoff(retries: int) -> int:
    return min(300, 5 * 2 ** retries)


@app.task(bind=True, name=SEGMENT_SHOT, max_retries=MAX_RETRIES)
def segment_shot(self, shot_id: int) -> str:
    ctx = pipeline.context()
    try:
        return pipeline.process_shot(ctx, shot_id)
    except pipeline.transient_errors() as exc:
        if self.request.retries >= self.max_retries:
            pipeline.mark_failed(ctx.url, shot_id, f"gave up after {self.max_retries} retries: {exc!r}")
            return "failed"
        log.warning("shot %s: transient error, retry %d: %r", shot_id, self.request.retries + 1, exc)
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
    except pipeline.ModelUnavailable as exc:
        # Keep the shot queued until the deployment is fixed, however long that takes.
        log.error("shot %s waits: %s", shot_id, exc)
        raise self.retry(exc=exc, countdown=60, max_retries=None)
    except SoftTimeLimitExceeded:
        pipeline.mark_failed(ctx.url, shot_id, f"timed out after {ctx.settings.task_soft_time_limit} s")
        return "failed"
    except Exception as exc:
        log.exception("shot %s: unexpected error", shot_id)
        pipeline.mark_failed(ctx.url, shot_id, f"internal error: {exc!r}")
        return "failed"


@app.task(bind=True, name=SCORE_SEGMENTATION, max_retries=MAX_RETRIES)
def score_segmentation(self, segmentation_id: int):
    ctx = pipeline.context()
    try:
        return pipeline.score_segmentation(ctx, segmentation_id)
    except pipeline.transient_errors() as exc:
        raise self.retry(exc=exc, countdown=_backoff(self.request.retries))
