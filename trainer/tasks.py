"""The retraining task: thin; the work is in trainer.retrain. It runs on the app's base task
(cutout.queue.CutoutTask): an outage of the database or the bucket is retried with backoff."""

from __future__ import annotations

from cutout.queue import RETRAIN
from trainer.app import app


# Training runs for hours: no soft limit. The hard limit is the app's (RETRAIN_TIME_LIMIT),
# and its visibility timeout twice that.
@app.task(name=RETRAIN, soft_time_limit=None)
def retrain() -> dict:
    from trainer.app import settings
    from trainer.retrain import retrain as run

    return run(settings)
