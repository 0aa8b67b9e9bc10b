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

    @app.task(base=Recording, name=f"t{id(failures)}", max_retries=3)
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


def test_transient_trouble_that_persists_is_given_up(app):
    task, attempts = make_task(app, [ConnectionError("reset")] * 10)
    assert task.apply(args=[7]).get() == "failed"
    assert len(attempts) == 4
    (reason, args), = Recording.given_up
    assert reason.startswith("gave up after 3 retries") and "reset" in reason and args == (7,)


def test_waiting_has_no_limit_and_leaves_the_retry_budget_alone(app):
    waits = [Wait("model missing")] * 6  # more than max_retries=3
    task, attempts = make_task(app, waits + [ConnectionError("reset")] * 3)
    assert task.apply(args=[7]).get() == "waiting"  # this message; the item runs again later
    assert len(attempts) == 10 and not Recording.given_up, "three transient errors after the waits are still retried"


@pytest.mark.parametrize("error, words", [(ValueError("boom"), "internal error: ValueError('boom')"),
                                          (SoftTimeLimitExceeded(), "timed out after")])
def test_the_unexpected_and_timeouts_are_given_up_at_once(app, error, words):
    task, attempts = make_task(app, [error])
    assert task.apply(args=[7]).get() == "failed"
    assert len(attempts) == 1 and Recording.given_up[0][0].startswith(words)


def test_backoff_doubles_and_is_capped():
    assert [backoff(r) for r in range(8)] == [5, 10, 20, 40, 80, 160, 300, 300]
