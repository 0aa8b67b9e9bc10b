"""The worker's job on SQLite and a folder bucket (fast); the same code runs on the real fleet
in tests/integration."""

import threading

import pytest
from sqlalchemy import event, func, select

from cutout import db, imageio, naming
from cutout.config import Settings
from cutout.db import session_scope
from cutout.metrics import dice
from cutout.schema import Segmentation, Shot
from demo import synthetic
from producer import sweep
from worker import job
from worker.resources import ModelUnavailable, Resources


@pytest.fixture
def res(sqlite_url, tmp_path, tiny_model):
    settings = Settings(database_url=sqlite_url, bucket=f"file://{tmp_path / 'bucket'}", model_dir=tiny_model,
                        max_pixels=3_000_000)
    return Resources(settings)


def add(res, name, view, data, reference=None):
    gid = synthetic.garment_id(name)
    res.storage.put(naming.shot_key(gid, view), data, "image/png")
    if reference is not None:
        res.storage.put(naming.cutout_key(gid, view), reference, "image/png")
    sweep.register(res.url, res.storage)
    with session_scope(res.url) as s:
        return s.execute(select(Shot.id).where(Shot.garment_id == gid, Shot.view == view)).scalar_one()


def test_a_shot_is_segmented_once_and_scored_against_its_reference(res):
    rgba, mask = synthetic.studio_shot(5, "Back", size=(432, 288))
    shot_id = add(res, "p1", "Back", imageio.encode_png(rgba), imageio.encode_png(imageio.rgba_cutout(rgba, mask)))
    assert job.segment_shot(res, shot_id) == "done"
    assert job.segment_shot(res, shot_id) == "already-done"
    with session_scope(res.url) as s:
        seg = s.execute(select(Segmentation)).scalar_one()
        shot = s.get(Shot, shot_id)
        assert (shot.status, shot.attempts) == ("done", 1)
    out = imageio.decode_png(res.storage.get(seg.mask_key), 10**7, want="cutout")
    assert out.shape == (432, 288)
    assert seg.dice == pytest.approx(dice(out, mask)), "Dice is the stored mask's against the reference alpha"
    assert seg.dice_reference_etag and seg.shot_etag == shot.etag
    parts = seg.confidence_parts
    assert seg.confidence == pytest.approx(parts["decisiveness"] * parts["agreement"], abs=1e-4)


def test_one_transaction_to_claim_and_one_to_record(res):
    shot_id = add(res, "p5", "Front", imageio.encode_png(synthetic.studio_shot(3, size=(432, 288))[0]))
    res.model()  # loading (and registering) the model is once per process, not per shot
    transactions = []

    def count(connection):
        transactions.append(connection)

    engine = db.engine_for(res.url)
    event.listen(engine, "begin", count)
    try:
        assert job.segment_shot(res, shot_id) == "done"
    finally:
        event.remove(engine, "begin", count)
    assert len(transactions) == 2


def test_the_four_results_upload_side_by_side(res, monkeypatch):
    """Each upload waits until all four are in flight: put one after another, the first would
    wait alone until the barrier gives up, and the shot would not be done."""
    shot_id = add(res, "p6", "Front", imageio.encode_png(synthetic.studio_shot(4, size=(432, 288))[0]))
    together = threading.Barrier(4, timeout=20)
    put = res.storage.put

    def meet_then_put(key, data, content_type):
        if key.startswith(naming.RESULTS_PREFIX):
            together.wait()
        put(key, data, content_type)

    monkeypatch.setattr(res.storage, "put", meet_then_put)
    timings = {}
    monkeypatch.setattr(job.metrics, "shot_done", lambda t, total: timings.update(t))
    assert job.segment_shot(res, shot_id) == "done"
    with session_scope(res.url) as s:
        seg = s.execute(select(Segmentation)).scalar_one()
        keys = (seg.first_mask_key, seg.mask_key, seg.cutout_key, seg.overlay_key)
    assert all(res.storage.get(key) for key in keys)
    assert timings["encode_s"] > 0 and timings["upload_s"] >= 0


def test_a_failed_upload_fails_the_attempt_after_the_others_finished(res, monkeypatch):
    shot_id = add(res, "p7", "Front", imageio.encode_png(synthetic.studio_shot(4, size=(432, 288))[0]))
    put, written = res.storage.put, []

    def refuse_the_cutout(key, data, content_type):
        if key.endswith("_cutout.png"):
            raise ConnectionError("bucket unreachable")
        put(key, data, content_type)
        written.append(key)

    monkeypatch.setattr(res.storage, "put", refuse_the_cutout)
    with pytest.raises(ConnectionError, match="unreachable"):
        job.segment_shot(res, shot_id)
    assert len(written) == 3, "the other uploads ran to their end before the error was raised"
    with session_scope(res.url) as s:
        assert s.get(Shot, shot_id).status != "done"
        assert s.execute(select(func.count()).select_from(Segmentation)).scalar_one() == 0


def test_bad_input_is_recorded_not_raised(res):
    shot_id = add(res, "p2", "Front", b"not an image")
    assert job.segment_shot(res, shot_id) == "failed"
    with session_scope(res.url) as s:
        shot = s.get(Shot, shot_id)
        assert shot.status == "failed" and "not a PNG" in shot.failure_reason


def test_reference_of_another_size_gives_no_dice_but_says_why(res):
    rgba, mask = synthetic.studio_shot(6, "Front", size=(432, 288))
    small = imageio.rgba_cutout(*synthetic.studio_shot(6, "Front", size=(216, 144)))
    shot_id = add(res, "p3", "Front", imageio.encode_png(rgba), imageio.encode_png(small))
    assert job.segment_shot(res, shot_id) == "done"
    with session_scope(res.url) as s:
        seg = s.execute(select(Segmentation)).scalar_one()
    assert seg.dice is None and "144x216" in seg.confidence_parts["reference_problem"]


def test_a_late_reference_is_scored_from_the_stored_mask(res):
    rgba, mask = synthetic.studio_shot(8, "Front", size=(432, 288))
    shot_id = add(res, "p6", "Front", imageio.encode_png(rgba))
    assert job.segment_shot(res, shot_id) == "done"
    add(res, "p6", "Front", imageio.encode_png(rgba), imageio.encode_png(imageio.rgba_cutout(rgba, mask)))
    with session_scope(res.url) as s:
        seg_id = s.execute(select(Segmentation.id)).scalar_one()
    score = job.score_segmentation(res, seg_id)
    with session_scope(res.url) as s:
        seg = s.get(Segmentation, seg_id)
    stored = imageio.decode_png(res.storage.get(seg.mask_key), 10**7, want="cutout")
    assert seg.dice == score == pytest.approx(dice(stored, mask))


def test_a_missing_model_keeps_the_shot_queued(res, tmp_path):
    from dataclasses import replace

    broken = Resources(replace(res.settings, model_dir=tmp_path / "nowhere"), storage=res.storage)
    shot_id = add(res, "p4", "Front", imageio.encode_png(synthetic.studio_shot(1, size=(432, 288))[0]))
    with pytest.raises(ModelUnavailable, match="CUTOUT_MODEL"):
        job.segment_shot(broken, shot_id)
    with session_scope(res.url) as s:
        assert s.get(Shot, shot_id).status == "pending"


def test_a_shot_held_by_a_live_task_is_left_alone_and_taken_once_its_lease_ran_out(res):
    from datetime import datetime, timedelta, timezone

    from sqlalchemy import update

    shot_id = add(res, "lease", "Front", imageio.encode_png(synthetic.studio_shot(4, size=(432, 288))[0]))
    now = datetime.now(timezone.utc)
    with session_scope(res.url) as s:
        s.execute(update(Shot).values(status="processing", claimed_by="task-a", attempts=1,
                                      lease_until=now + timedelta(minutes=1)))
    assert job.segment_shot(res, shot_id, token="task-b") == "busy", "a duplicate never runs beside the holder"
    with session_scope(res.url) as s:
        assert s.execute(select(func.count()).select_from(Segmentation)).scalar_one() == 0
        s.execute(update(Shot).values(lease_until=now - timedelta(seconds=1)))  # the holder died
    assert job.segment_shot(res, shot_id, token="task-b") == "done"
    with session_scope(res.url) as s:
        shot = s.get(Shot, shot_id)
        assert (shot.status, shot.attempts, shot.claimed_by, shot.lease_until) == ("done", 2, None, None)


def test_the_holder_itself_takes_its_shot_again(res):
    from sqlalchemy import update

    shot_id = add(res, "holder", "Front", imageio.encode_png(synthetic.studio_shot(6, size=(432, 288))[0]))
    with session_scope(res.url) as s:
        s.execute(update(Shot).values(status="processing", claimed_by="task-a", attempts=1))
    with session_scope(res.url) as s:  # a lease that has not run out: only the holder may go on
        from datetime import datetime, timedelta, timezone

        s.execute(update(Shot).values(lease_until=datetime.now(timezone.utc) + timedelta(minutes=1)))
    assert job.segment_shot(res, shot_id, token="task-a") == "done", "a retry, or its own redelivered message"
