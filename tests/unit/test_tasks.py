"""The worker's task wrappers: retry on transient trouble, record failure when it persists."""

import pytest
from sqlalchemy import select

from cutout import db, imageio, naming, pipeline, registry, synthetic
from cutout.config import Settings
from cutout.db import session_scope
from cutout.schema import Shot

pytest.importorskip("tensorflow")


class FlakyStorage:
    """Fails the first `failures` downloads the way a dropped connection does."""

    def __init__(self, inner, failures):
        self.inner, self.failures, self.bucket = inner, failures, inner.bucket

    def get(self, key):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("connection reset by peer")
        return self.inner.get(key)

    def __getattr__(self, name):
        return getattr(self.inner, name)


@pytest.fixture
def shot(sqlite_url, tmp_path, tiny_model):
    url = sqlite_url
    ctx = pipeline.Context(Settings(database_url=url, bucket=f"file://{tmp_path / 'b'}", model_dir=tiny_model))
    ctx.storage.put(naming.shot_key(synthetic.garment_id("t"), "Front"),
                    imageio.encode_png(synthetic.studio_shot(0, size=(288, 192))[0]), "image/png")
    registry.register(url, ctx.storage)
    yield ctx
    pipeline._context = None


def status(ctx):
    with session_scope(ctx.url) as s:
        return s.execute(select(Shot.status, Shot.failure_reason)).one()


def run_eager(task, *args):
    from worker.demo import _eager_sender

    _eager_sender(task)(*args)  # the demo's own way of running tasks in process


def test_transient_errors_are_retried_until_it_works(shot):
    from worker import tasks

    shot._storage = FlakyStorage(shot.storage, failures=2)
    pipeline._context = shot
    run_eager(tasks.segment_shot, 1)
    assert status(shot) == ("done", None)


def test_persistent_trouble_ends_as_a_recorded_failure(shot):
    from worker import tasks

    shot._storage = FlakyStorage(shot.storage, failures=100)
    pipeline._context = shot
    run_eager(tasks.segment_shot, 1)
    state, reason = status(shot)
    assert state == "failed" and "gave up after" in reason and "connection reset" in reason
