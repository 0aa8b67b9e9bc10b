"""The worker's tasks on SQLite and a folder bucket: transient trouble (a dropped connection,
an S3 endpoint that does not answer) is retried for as long as it lasts."""


import boto3
import pytest
from botocore.config import Config
from sqlalchemy import select

from cutout import imageio, naming
from cutout.config import Settings
from cutout.db import session_scope
from cutout.schema import Shot
from cutout.storage import S3Storage
from demo import synthetic
from demo.cli import _eager_sender
from producer import sweep
from tests.helpers import free_port
from worker import tasks
from worker.app import start_process
from worker.resources import Resources


def dead_s3() -> S3Storage:
    """A real boto3 client whose endpoint refuses connections: botocore raises its own
    EndpointConnectionError, not Python's ConnectionError."""
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=1))
    return S3Storage("studio", client=client)


class FlakyStorage:
    """The first `failures` downloads go to a broken store; then to the real one."""

    def __init__(self, inner, failures, broken):
        self.inner, self.failures, self.broken, self.bucket = inner, failures, broken, inner.bucket

    def get(self, key):
        if self.failures:
            self.failures -= 1
            return self.broken(key)
        return self.inner.get(key)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def reset_by_peer(key):
    raise ConnectionError("connection reset by peer")


@pytest.fixture
def res(sqlite_url, tmp_path, tiny_model):
    res = Resources(Settings(database_url=sqlite_url, bucket=f"file://{tmp_path / 'b'}", model_dir=tiny_model))
    res.storage.put(naming.shot_key(synthetic.garment_id("t"), "Front"),
                    imageio.encode_png(synthetic.studio_shot(0, size=(288, 192))[0]), "image/png")
    sweep.register(sqlite_url, res.storage)
    return res


def status(res):
    with session_scope(res.url) as s:
        return s.execute(select(Shot.status, Shot.failure_reason)).one()


@pytest.mark.parametrize("broken", [reset_by_peer, lambda key: dead_s3().get(key)], ids=["python", "botocore"])
def test_transient_errors_are_retried_until_it_works(res, broken):
    flaky = FlakyStorage(res.storage, failures=2, broken=broken)
    start_process(Resources(res.settings, storage=flaky))
    _eager_sender(tasks.segment_shot)(1)
    assert status(res) == ("done", None)
    assert flaky.failures == 0


@pytest.mark.parametrize("broken", [reset_by_peer, lambda key: dead_s3().get(key)], ids=["python", "botocore"])
def test_an_outage_longer_than_any_ladder_still_ends_done(res, broken):
    flaky = FlakyStorage(res.storage, failures=12, broken=broken)  # 12 retries: over an hour at the cap
    start_process(Resources(res.settings, storage=flaky))
    _eager_sender(tasks.segment_shot)(1)
    assert status(res) == ("done", None)
    assert flaky.failures == 0


def test_the_retraining_task_runs_on_the_base_task_with_the_trainers_settings(sqlite_url, monkeypatch):
    """The task body itself: the trainer app's settings reach trainer.retrain, and the task is a
    CutoutTask (so an outage is retried, not lost), like every task of every app."""
    import importlib

    from cutout.queue import CutoutTask
    from trainer import tasks as trainer_tasks

    trainer_app = importlib.import_module("trainer.app")  # the module (trainer.app the name is its Celery app)

    assert isinstance(trainer_tasks.retrain, CutoutTask) and isinstance(tasks.segment_shot, CutoutTask)
    monkeypatch.setattr(trainer_app, "settings", Settings(database_url=sqlite_url, bucket="file:///nowhere",
                                                          min_training_pairs=1))
    summary = trainer_tasks.retrain.apply().get()
    assert summary == {"labelled": 0, "training": 0, "holdout": 0,
                       "outcome": "skipped: need 1 training pairs and a non-empty holdout"}


def test_beat_sends_the_retraining_and_the_release_rule_refit_nightly(sqlite_url, monkeypatch):
    import importlib

    from cutout.queue import CALIBRATE_FROM_REVIEWS, RETRAIN
    from trainer import tasks as trainer_tasks

    trainer_app = importlib.import_module("trainer.app")
    schedule = trainer_app.app.conf.beat_schedule
    assert {entry["task"] for entry in schedule.values()} == {RETRAIN, CALIBRATE_FROM_REVIEWS}
    assert len({str(entry["schedule"]) for entry in schedule.values()}) == 1, "the same night"
    monkeypatch.setattr(trainer_app, "settings", Settings(database_url=sqlite_url))
    assert "nothing to calibrate from" in trainer_tasks.calibrate_from_reviews.apply().get()["reason"]
