"""The retraining task: thin; the work is in trainer.retrain."""

from __future__ import annotations

from cutout.queue import RETRAIN
from trainer.app import RETRAIN_TIME_LIMIT, app


# Training runs for an hour or more: no soft limit; the app's visibility timeout is twice the hard limit.
@app.task(name=RETRAIN, soft_time_limit=None, time_limit=RETRAIN_TIME_LIMIT)
def retrain() -> dict:
    from cutout.config import Settings
    from trainer.retrain import retrain as run

    return run(Settings.from_env())
