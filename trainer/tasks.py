"""The trainer's tasks, thin: the retraining (trainer.retrain) and the nightly refit of the release
rule (cutout.evidence). They run on the app's base task
(cutout.queue.CutoutTask): an outage of the database or the bucket is retried with backoff."""

from __future__ import annotations

from cutout.queue import CALIBRATE_FROM_REVIEWS, RETRAIN
from trainer.app import app


# Training runs for hours: no soft limit. The hard limit is the app's (RETRAIN_TIME_LIMIT),
# and its visibility timeout twice that.
@app.task(name=RETRAIN, soft_time_limit=None)
def retrain() -> dict:
    from trainer.app import settings
    from trainer.retrain import retrain as run

    return run(settings)


@app.task(name=CALIBRATE_FROM_REVIEWS)
def calibrate_from_reviews() -> dict:
    """Nightly, after the retraining on the same queue: the release rule of the model in service
    refitted on the studio's reviews of the day (cutout.evidence.refit_in_service)."""
    from cutout import evidence
    from trainer.app import settings

    return evidence.refit_in_service(settings)

