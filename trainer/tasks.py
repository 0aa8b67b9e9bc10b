"""The retraining task: thin; the work is in trainer.retrain."""

from __future__ import annotations

from cutout.queue import RETRAIN
from trainer.app import app


# Training runs for an hour or more: no soft limit, a hard limit well inside the visibility timeout.
@app.task(name=RETRAIN, soft_time_limit=None, time_limit=2 * 3600)
def retrain() -> dict:
    from cutout.config import Settings
    from trainer.retrain import retrain as run

    return run(Settings.from_env())
