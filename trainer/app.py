"""The trainer's Celery app and beat schedule (Celery's own scheduler, no home-made one)."""

from __future__ import annotations

from celery.schedules import crontab

from cutout.config import ConfigError, Settings
from cutout.queue import CALIBRATE_FROM_REVIEWS, RETRAIN, make_celery

RETRAIN_TIME_LIMIT = 4 * 3600

settings = Settings.from_env()
# Its own key space on Redis: segmentation workers restore unacknowledged tasks after minutes,
# and must never hand a retraining that runs for hours to a second trainer.
app = make_celery(settings, "cutout-trainer", time_limit=RETRAIN_TIME_LIMIT, key_prefix="cutout-training:")
app.conf.include = ["trainer.tasks"]
app.conf.task_routes = {name: {"queue": settings.training_queue} for name in (RETRAIN, CALIBRATE_FROM_REVIEWS)}

try:
    minute, hour, day, month, weekday = settings.retrain_cron.split()
except ValueError:
    raise ConfigError(f"CUTOUT_RETRAIN_CRON={settings.retrain_cron!r} needs five fields: minute hour day month weekday") from None
nightly = crontab(minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday)
# Both on the training queue, sent together: one trainer runs the retraining, then the refit of
# the release rule on the day's reviews (of the model in service by then).
app.conf.beat_schedule = {
    "retrain": {"task": RETRAIN, "schedule": nightly, "options": {"queue": settings.training_queue}},
    "calibrate-from-reviews": {"task": CALIBRATE_FROM_REVIEWS, "schedule": nightly,
                               "options": {"queue": settings.training_queue}},
}
