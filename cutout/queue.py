"""The Celery configuration shared by everyone who talks to the queue.

The producer sends tasks *by name* through an app built here, so it never imports the
worker (or TensorFlow). The worker builds the same app and registers the tasks.
"""

from __future__ import annotations

from celery import Celery

from cutout.config import Settings

SEGMENT_SHOT = "cutout.segment_shot"
SCORE_SEGMENTATION = "cutout.score_segmentation"
RETRAIN = "cutout.retrain"


def make_celery(settings: Settings, name: str = "cutout") -> Celery:
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
        task_time_limit=settings.task_soft_time_limit + 60,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Must exceed the longest task, or Redis hands a running task to a second worker.
            "visibility_timeout": settings.visibility_timeout,
        },
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        timezone="UTC",
    )
    return app
