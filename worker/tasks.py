"""Celery tasks: thin wrappers that pass ids (never pixels) to worker.job. What is retried and
what is given up is cutout.queue.CutoutTask's decision; giving up on a shot records it as
failed with the reason, so no shot is silently lost:

- done, or failed with a readable reason (bad input, missing object): acknowledged, never retried;
- transient S3/database trouble: retried with exponential backoff, then recorded as failed;
- the model cannot be loaded (a deployment problem): retried every minute, the shot stays queued;
- the soft time limit or anything unexpected: recorded as failed with the error.
"""

from __future__ import annotations

from cutout.queue import SCORE_SEGMENTATION, SEGMENT_SHOT, CutoutTask
from worker import job
from worker.app import app, process_resources


class ShotTask(CutoutTask):
    def give_up(self, reason: str, shot_id: int) -> str:
        job.mark_failed(process_resources(), shot_id, reason)
        return "failed"


@app.task(base=ShotTask, name=SEGMENT_SHOT)
def segment_shot(shot_id: int) -> str:
    return job.segment_shot(process_resources(), shot_id)


@app.task(base=CutoutTask, name=SCORE_SEGMENTATION)
def score_segmentation(segmentation_id: int) -> float | None:
    return job.score_segmentation(process_resources(), segmentation_id)
