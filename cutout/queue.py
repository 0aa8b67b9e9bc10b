"""The Celery configuration shared by everyone who talks to the queue.

The producer sends tasks *by name* through an app built here, so it never imports the
worker (or TensorFlow). The worker builds the same app and registers the tasks.
"""

from __future__ import annotations

from celery import Celery

from cutout.config import ConfigError, Settings

SEGMENT_SHOT = "cutout.segment_shot"
SCORE_SEGMENTATION = "cutout.score_segmentation"
RETRAIN = "cutout.retrain"


def make_celery(settings: Settings, name: str = "cutout", *, time_limit: int | None = None,
                key_prefix: str = "") -> Celery:
    """The shared configuration.

    time_limit: the hard limit of this app's longest task (default: the segmentation soft
    limit + 60 s). Redis hands an unacknowledged task to another worker after
    visibility_timeout, and that is also how long the task of a SIGKILLed *main* worker
    process waits to come back, so the timeout is kept just above the longest task, per app.
    key_prefix: a separate key space on the same Redis, so that apps with very different
    timeouts (segmentation: minutes; retraining: hours) never restore each other's tasks.
    """
    time_limit = time_limit or settings.task_soft_time_limit + 60
    if settings.visibility_timeout <= time_limit and not key_prefix:
        raise ConfigError(f"CUTOUT_VISIBILITY_TIMEOUT={settings.visibility_timeout} must exceed the task time limit "
                          f"({time_limit} s), or Redis would hand running tasks to a second worker")
    visibility = settings.visibility_timeout if not key_prefix else max(settings.visibility_timeout, 2 * time_limit)
    transport = {
        "visibility_timeout": visibility,
        # Sweep for tasks of dead workers every minute (kombu's default is about 100 s).
        "unacked_restore_interval": 10,
        "unacked_restore_throttle": 6,
    }
    if key_prefix:
        transport["global_keyprefix"] = key_prefix
    app = Celery(name, broker=settings.broker_url or "memory://")
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        # Results live in our tables; a result backend would only add polling load.
        task_ignore_result=True,
        task_default_queue=settings.queue,
        # A task is acknowledged only once it finished; a killed child's task goes back on the queue.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_soft_time_limit,
        task_time_limit=time_limit,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
    )
    return app
