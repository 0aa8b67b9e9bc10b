"""The queue: task names, the Celery configuration shared by everyone who talks to it, and
the base class that decides, for every task, what is retried and what is given up.

The producer sends tasks *by name* through an app built here, so it never imports the
worker (or TensorFlow). The worker builds the same app and registers the tasks.
"""

from __future__ import annotations

import logging
import time

from celery import Celery, Task
from celery.exceptions import Reject, Retry, SoftTimeLimitExceeded

from cutout import logs
from cutout.config import ConfigError, Settings
from cutout.errors import one_line

log = logging.getLogger(__name__)

SEGMENT_SHOT = "cutout.segment_shot"
SCORE_SEGMENTATION = "cutout.score_segmentation"
RETRAIN = "cutout.retrain"
CALIBRATE_FROM_REVIEWS = "cutout.calibrate_from_reviews"


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
    time_limit = time_limit or settings.task_time_limit
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
    # Every task of every app runs on CutoutTask, as warehouse sets its base task: retries,
    # waiting and giving up are decided in one place.
    app = Celery(name, broker=settings.broker_url or "memory://", task_cls=CutoutTask)
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
        # Task events (sent, received, started, succeeded, failed, retried) for Flower.
        worker_send_task_events=True,
        task_send_sent_event=True,
        timezone="UTC",
    )
    app.conf.cutout_retry_cap = settings.retry_cap_seconds
    return app


def queue_depth(app: Celery, queue: str) -> int:
    """Messages waiting in `queue` on the broker (not those workers already hold); 0 for a
    queue the broker does not know (Redis drops an empty list)."""
    with app.connection_for_read() as conn:
        try:
            return conn.default_channel.queue_declare(queue=queue, passive=True).message_count
        except conn.channel_errors:
            return 0


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying with backoff: the network, S3 or the database hiccuped."""
    from botocore.exceptions import ConnectionError as BotoConnectionError
    from botocore.exceptions import HTTPClientError
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (BotoConnectionError, HTTPClientError, OperationalError, InterfaceError, ConnectionError, TimeoutError)


def backoff(retries: int, cap: int = 300) -> int:
    """Seconds before retry number retries + 1: 5, 10, 20 ... capped at `cap` (5 minutes)."""
    return min(cap, 5 * 2 ** min(retries, 16))


class Wait(Exception):
    """This process cannot run the task yet (say, its model does not load): a deployment
    problem, not the item's. The message stays queued until the process can."""


class CutoutTask(Task):
    """Every cutout task's outcome rules, in one place:

    - transient trouble (the network, S3, the database, the broker): retried with exponential
      backoff (capped at retry_cap seconds) for as long as it lasts: an outage is never the
      item's fault, so it never uses the item up;
    - Wait: sent again to run in wait_seconds, without limit;
    - the soft time limit, or anything unexpected (logged with its traceback): given up.

    Giving up means what give_up says (subclasses record the failure where people will see
    it); the task is then acknowledged as finished, so one bad item never blocks the queue.

    Nothing is acknowledged before its outcome is recorded: when give_up cannot record (the
    database is down) the task is retried; when the broker refuses the retry's message, the
    delivery is rejected back onto the queue (Celery's own retry would drop it), and if even
    that cannot reach the broker the message stays unacknowledged and the broker hands it out
    again after its visibility timeout.
    """

    max_retries = None
    wait_seconds = 60
    item_name = "item_id"  # what the first argument is: every log line of the task's work names it

    @property
    def retry_cap(self) -> int:
        return self.app.conf.get("cutout_retry_cap") or 300

    def __call__(self, *args, **kwargs):
        # Calls run() directly: Task.__call__ would push a second request (without the retry
        # count) when tasks run eagerly, as the demo runs them.
        with logs.context(**({self.item_name: args[0]} if args else {})):
            return self._run(args, kwargs)

    def _run(self, args, kwargs):
        try:
            return self.run(*args, **kwargs)
        except Retry:
            raise
        except transient_errors() as exc:
            return self._retry_transient(exc, args, kwargs)
        except Wait as exc:
            # A fresh message, not a retry: waiting is not the item's fault and must never
            # count against anything the item has.
            log.error("%s%s waits %d s: %s", self.name, list(args), self.wait_seconds, exc)
            queue = (self.request.delivery_info or {}).get("routing_key")
            try:
                self.apply_async(args, kwargs, countdown=self.wait_seconds, **({"queue": queue} if queue else {}))
            except Exception as publish:
                self._requeue(publish, args)
            return "waiting"
        except SoftTimeLimitExceeded:
            limit = self.soft_time_limit or self.app.conf.task_soft_time_limit
            return self._give_up(f"timed out after {limit} s", args, kwargs)
        except Exception as exc:
            log.exception("%s%s: unexpected error", self.name, list(args))
            return self._give_up(f"internal error: {exc!r}", args, kwargs)

    def _retry_transient(self, exc, args, kwargs):
        countdown = backoff(self.request.retries, self.retry_cap)
        log.warning("%s%s: %s; retry %d in %d s", self.name, list(args), one_line(exc),
                    self.request.retries + 1, countdown)
        self.before_retry(exc, countdown, *args, **kwargs)
        try:
            raise self.retry(exc=exc, countdown=countdown)
        except Reject as rejected:
            # Celery could not publish the retry (the broker refused it) and would drop the
            # delivery; put it back instead.
            self._requeue(rejected.reason, args)

    def _requeue(self, problem, args):
        log.error("%s%s: the broker refused a message (%s); the delivery goes back on the queue",
                  self.name, list(args), one_line(problem))
        time.sleep(min(5, self.retry_cap))  # no hot loop while the broker is ill
        raise Reject(problem, requeue=True)

    def _give_up(self, reason: str, args, kwargs):
        try:
            return self.give_up(reason, *args, **kwargs)
        except transient_errors() as exc:
            # The outcome cannot be recorded (the database is down): never acknowledge it as
            # finished; the retry runs the task again once the trouble is over.
            return self._retry_transient(exc, args, kwargs)

    def before_retry(self, exc: BaseException, countdown: int, *args, **kwargs) -> None:
        """Called before a transient retry is scheduled (a subclass may count it, extend its claim)."""

    def give_up(self, reason: str, *args, **kwargs):
        log.error("%s%s given up: %s", self.name, list(args), reason)
        return "failed"
