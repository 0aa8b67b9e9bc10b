"""trainer: trains, evaluates and, on Celery beat's schedule, retrains the segmentation models.

`celery -A trainer worker -Q training` runs retraining; `celery -A trainer beat` schedules it.
"""

from trainer.app import app  # noqa: F401
