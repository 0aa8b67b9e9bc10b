"""The queue: task names, the Celery configuration shared by everyone who talks to it, and
the base class that decides, for every task, what is retried and what is given up.

The producer sends tasks *by name* through an app built here, so it never imports the
worker (or TensorFlow). The worker builds the same app and registers the tasks.
"""

from __future__ import annotations

import logging

from celery import Celery, Task
from celery.exceptions import Retry, SoftTimeLimitExceeded

from cutout.config import ConfigError, Settings

log = logging.getLogger(__name__)

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


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying with backoff: the network, S3 or the database hiccuped."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (BotoConnectionError, HTTPClientError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


def backoff(retries: int) -> int:
    """Seconds before retry number retries + 1: 5, 10, 20 ... capped at 5 minutes."""
    return min(300, 5 * 2 ** retries)


class Wait(Exception):
    """This process cannot run the task yet (say, its model does not load): a deployment
    problem, not the item's. The message stays queued until the process can."""


class CutoutTask(Task):
    """Every cutout task's outcome rules, in one place:

    - transient trouble (network, S3, database): retried with exponential backoff up to
      max_retries, then given up;
    - Wait: sent again to run in wait_seconds, without limit;
    - the soft time limit, or anything unexpected (logged with its traceback): given up.

    Giving up means what give_up says; the task is then acknowledged as finished, so one bad
    item never blocks the queue. Subclasses record the failure where people will see it.
    """

    max_retries = 6
    wait_seconds = 60

    def __call__(self, *args, **kwargs):
        # Calls run() directly: Task.__call__ would push a second request (without the retry
        # count) when tasks run eagerly, as the demo runs them.
        try:
            return self.run(*args, **kwargs)
        except Retry:
            raise
        except transient_errors() as exc:
            if self.request.retries >= self.max_retries:
                return self.give_up(f"gave up after {self.max_retries} retries: {exc!r}", *args, **kwargs)
            log.warning("%s%s: transient error, retry %d: %r", self.name, list(args), self.request.retries + 1, exc)
            raise self.retry(exc=exc, countdown=backoff(self.request.retries))
        except Wait as exc:
            # A fresh message, not a retry: waiting is not the item's fault, so it must not use
            # up the item's retry budget (and Celery's retry(max_retries=None) means "the
            # task's default", not "forever").
            log.error("%s%s waits %d s: %s", self.name, list(args), self.wait_seconds, exc)
            queue = (self.request.delivery_info or {}).get("routing_key")
            self.apply_async(args, kwargs, countdown=self.wait_seconds, **({"queue": queue} if queue else {}))
            return "waiting"
        except SoftTimeLimitExceeded:
            limit = self.soft_time_limit or self.app.conf.task_soft_time_limit
            return self.give_up(f"timed out after {limit} s", *args, **kwargs)
        except Exception as exc:
            log.exception("%s%s: unexpected error", self.name, list(args))
            return self.give_up(f"internal error: {exc!r}", *args, **kwargs)

    def give_up(self, reason: str, *args, **kwargs):
        log.error("%s%s given up: %s", self.name, list(args), reason)
        return "failed"
