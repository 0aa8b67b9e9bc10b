"""The base task's outcome rules, on a Celery app of its own running tasks eagerly."""

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from cutout.config import Settings
from cutout.queue import CutoutTask, Wait, backoff, make_celery


class Recording(CutoutTask):
    given_up: list = []

    def give_up(self, reason, *args):
        self.given_up.append((reason, args))
        return "failed"


@pytest.fixture
def app():
    app = make_celery(Settings(), "test")
    app.conf.task_always_eager = True
    Recording.given_up = []
    return app


def make_task(app, failures):
    """A task that raises failures[i] on its i-th attempt, then succeeds."""
    attempts = []

    @app.task(base=Recording, name=f"t{id(failures)}")
    def task(item):
        attempts.append(item)
        if len(attempts) <= len(failures):
            raise failures[len(attempts) - 1]
        return "done"

    return task, attempts


def test_transient_trouble_is_retried(app):
    task, attempts = make_task(app, [ConnectionError("reset"), TimeoutError()])
    assert task.apply(args=[7]).get() == "done"
    assert len(attempts) == 3 and not Recording.given_up


def test_transient_trouble_is_retried_for_as_long_as_it_lasts(app):
    # An outage is never the item's fault: 20 retries (hours at the capped backoff) and still
    # no give-up; the item is done when the trouble ends.
    task, attempts = make_task(app, [ConnectionError("reset")] * 20)
    assert task.apply(args=[7]).get() == "done"
    assert len(attempts) == 21 and not Recording.given_up


def test_waiting_has_no_limit(app):
    task, attempts = make_task(app, [Wait("model missing")] * 6 + [ConnectionError("reset")] * 3)
    assert task.apply(args=[7]).get() == "waiting"  # this message; the item runs again later
    assert len(attempts) == 10 and not Recording.given_up


def test_a_give_up_that_cannot_be_recorded_is_retried_not_acknowledged(app):
    recorded = []

    class DatabaseDown(Recording):
        def give_up(self, reason, *args):
            if len(recorded) < 2:  # the database is down for the first two tries
                recorded.append(None)
                raise ConnectionError("database unreachable")
            return super().give_up(reason, *args)

    runs = []

    @app.task(base=DatabaseDown, name="unrecordable")
    def task(item):
        runs.append(item)
        raise ValueError("boom")

    assert task.apply(args=[7]).get() == "failed"
    assert len(runs) == 3, "the task ran again until its failure could be recorded"
    assert Recording.given_up == [("internal error: ValueError('boom')", (7,))]


def test_a_retry_the_broker_refuses_goes_back_on_the_queue(app, monkeypatch):
    from celery.exceptions import Reject

    task, _ = make_task(app, [])

    def refused(**kwargs):  # what Celery's retry raises when it cannot publish the retry
        raise Reject(ConnectionError("broker refused"), requeue=False)

    monkeypatch.setattr(task, "retry", refused)
    monkeypatch.setattr("cutout.queue.time.sleep", lambda s: None)
    with pytest.raises(Reject) as rejected:
        task._retry_transient(ConnectionError("database unreachable"), (7,), {})
    assert rejected.value.requeue is True, "requeued, where Celery would have dropped the delivery"


@pytest.mark.parametrize("error, words", [(ValueError("boom"), "internal error: ValueError('boom')"),
                                          (SoftTimeLimitExceeded(), "timed out after")])
def test_the_unexpected_and_timeouts_are_given_up_at_once(app, error, words):
    task, attempts = make_task(app, [error])
    assert task.apply(args=[7]).get() == "failed"
    assert len(attempts) == 1 and Recording.given_up[0][0].startswith(words)


def test_backoff_doubles_and_is_capped():
    assert [backoff(r) for r in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
    assert backoff(10_000) == 300 and backoff(3, cap=2) == 2
