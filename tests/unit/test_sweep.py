"""Registration and exactly-once enqueueing, on SQLite and a folder bucket (the demo's stand-ins).
The same code runs against PostgreSQL and S3 in tests/integration."""

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from cutout.db import session_scope
from cutout.naming import cutout_key, shot_key
from cutout.schema import Garment, Rejection, Segmentation, Shot
from cutout.storage import LocalStorage
from producer import sweep
from tests.helpers import assert_standings_current

G1 = "11111111-1111-4111-8111-111111111111"
G2 = "22222222-2222-4222-8222-222222222222"


@pytest.fixture
def env(sqlite_url, tmp_path):
    return sqlite_url, LocalStorage(tmp_path / "bucket")


def put(storage, key, data=b"x"):
    storage.put(key, data, "image/png")


def count(url, model):
    with session_scope(url) as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_register_is_idempotent(env):
    url, storage = env
    for view in ("Front", "FrontRight", "Back"):
        put(storage, shot_key(G1, view))
    put(storage, cutout_key(G1, "Front"))
    first = sweep.register(url, storage)
    assert (first.seen, first.shots, first.references) == (4, 3, 1)
    again = sweep.register(url, storage)
    assert (again.shots, again.references, again.rejected) == (0, 0, 0)
    assert count(url, Shot) == 3 and count(url, Garment) == 1


def test_misnamed_keys_are_rejected_with_a_reason_once(env):
    url, storage = env
    put(storage, "shots/holiday-photo.png")
    put(storage, f"shots/{G1}_Side.png")
    result = sweep.register(url, storage)
    assert result.rejected == 2 and count(url, Shot) == 0
    assert sweep.register(url, storage).rejected == 0
    with session_scope(url) as s:
        reasons = dict(s.execute(select(Rejection.key, Rejection.reason)).all())
    assert "View" in reasons["shots/holiday-photo.png"]
    assert "Side" in reasons[f"shots/{G1}_Side.png"]


def test_each_shot_is_sent_once(env):
    url, storage = env
    put(storage, shot_key(G1, "Front"))
    put(storage, shot_key(G2, "Back"))
    sweep.register(url, storage)
    sent = []
    assert sweep.enqueue_shots(url, sent.append, 3600) == 2
    assert sweep.enqueue_shots(url, sent.append, 3600) == 0
    sweep.register(url, storage)
    assert sweep.enqueue_shots(url, sent.append, 3600) == 0
    assert sorted(sent) == [1, 2]


def test_a_failed_send_is_retried_next_sweep(env):
    url, storage = env
    put(storage, shot_key(G1, "Front"))
    sweep.register(url, storage)

    def broken(_):
        raise ConnectionError("broker down")

    with pytest.raises(ConnectionError):
        sweep.enqueue_shots(url, broken, 3600)
    sent = []
    assert sweep.enqueue_shots(url, sent.append, 3600) == 1 and sent == [1]


def test_reupload_with_new_content_is_processed_again(env):
    url, storage = env
    put(storage, shot_key(G1, "Front"), b"v1")
    sweep.register(url, storage)
    sweep.enqueue_shots(url, lambda _: None, 3600)
    with session_scope(url) as s:
        s.execute(update(Shot).values(status="done"))
    put(storage, shot_key(G1, "Front"), b"v2")
    assert sweep.register(url, storage).shots == 1
    sent = []
    sweep.enqueue_shots(url, sent.append, 3600)
    assert sent == [1]


def test_a_lost_message_is_resent_once_the_queue_is_empty(env):
    url, storage = env
    put(storage, shot_key(G1, "Front"))
    sweep.register(url, storage)
    sweep.enqueue_shots(url, lambda _: None, 300)
    with session_scope(url) as s:
        s.execute(update(Shot).values(enqueued_at=datetime.now(timezone.utc) - timedelta(hours=2)))
    sent = []
    assert sweep.enqueue_shots(url, sent.append, 300, queue_empty=False) == 0, "its message may still be queued"
    assert sweep.enqueue_shots(url, sent.append, 300, queue_empty=True) == 1 and sent == [1]
    assert sweep.enqueue_shots(url, sent.append, 300, queue_empty=True) == 0, "sent again: not due for 5 minutes"


def test_reference_after_segmentation_asks_for_scoring_once(env):
    url, storage = env
    put(storage, shot_key(G1, "Front"))
    sweep.register(url, storage)
    with session_scope(url) as s:
        from cutout.schema import ModelVersion

        s.add(ModelVersion(id=1, version="m-1", location="/m", params={}, metrics={}))
        shot = s.get(Shot, 1)
        shot.status = "done"
        s.add(Segmentation(shot_id=1, model_version_id=1, shot_etag=shot.etag, width=1, height=1,
                           first_mask_key="a", mask_key="b", cutout_key="c", overlay_key="d",
                           threshold_first=0.5, confidence=0.9, confidence_parts={}, timings={}))
    assert sweep.enqueue_scoring(url, lambda _: None) == 0  # no reference yet
    put(storage, cutout_key(G1, "Front"))
    sweep.register(url, storage)
    sent = []
    assert sweep.enqueue_scoring(url, sent.append) == 1
    assert sweep.enqueue_scoring(url, sent.append) == 0
    put(storage, cutout_key(G1, "Front"), b"corrected")  # a corrected cutout replaces it
    sweep.register(url, storage)
    assert sweep.enqueue_scoring(url, sent.append) == 1


def test_failed_shots_can_be_put_back(env, monkeypatch):
    from click.testing import CliRunner

    from cutout.cli import main

    url, storage = env
    put(storage, shot_key(G1, "Front"))
    put(storage, shot_key(G2, "Front"))
    sweep.register(url, storage)
    sweep.enqueue_shots(url, lambda _: None, 3600)
    with session_scope(url) as s:
        s.execute(update(Shot).where(Shot.id == 1).values(status="failed", failure_reason="internal error: boom"))
        s.execute(update(Shot).where(Shot.id == 2).values(status="failed", failure_reason="bad input: not a PNG"))
    monkeypatch.setenv("CUTOUT_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["shots", "retry", "--reason", "internal error"])
    assert result.exit_code == 0 and "1 failed shots" in result.output
    sent = []
    sweep.enqueue_shots(url, sent.append, 3600)
    assert sent == [1]


def test_stuck_shots_go_back_to_the_queue_but_never_one_a_worker_may_still_hold(env, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from click.testing import CliRunner

    from cutout.cli import main

    url, storage = env
    for g in (G1, G2):
        put(storage, shot_key(g, "Front"))
        put(storage, shot_key(g, "Back"))
    sweep.register(url, storage)
    sweep.enqueue_shots(url, lambda _: None, 3600)
    now = datetime.now(timezone.utc)
    with session_scope(url) as s:
        s.execute(update(Shot).where(Shot.id == 1).values(status="processing", started_at=now - timedelta(hours=1)))
        s.execute(update(Shot).where(Shot.id == 2).values(status="processing", started_at=now - timedelta(seconds=30)))
        s.execute(update(Shot).where(Shot.id == 3).values(enqueued_at=now - timedelta(hours=1)))  # message lost
        s.execute(update(Shot).where(Shot.id == 4).values(status="done"))
    monkeypatch.setenv("CUTOUT_DATABASE_URL", url)
    result = CliRunner().invoke(main, ["shots", "requeue", "--stuck"])
    assert result.exit_code == 0 and "2 stuck shots (older than 210 s)" in result.output, result.output
    sent = []
    sweep.enqueue_shots(url, sent.append, 3600)
    assert sorted(sent) == [1, 3], "shot 2 started 30 s ago: its worker may still be on it"
    assert CliRunner().invoke(main, ["shots", "requeue", "--stuck", "--older-than", "10"]).output.startswith("1 stuck")


def test_a_shot_whose_lease_ran_out_is_sent_again_and_failed_after_max_attempts(env):
    url, storage = env
    for g in (G1, G2):
        put(storage, shot_key(g, "Front"))
        put(storage, shot_key(g, "Back"))
    sweep.register(url, storage)
    sweep.enqueue_shots(url, lambda _: None, 300)
    now = datetime.now(timezone.utc)
    with session_scope(url) as s:
        held = dict(status="processing", claimed_by="task-a", started_at=now - timedelta(minutes=5))
        s.execute(update(Shot).where(Shot.id == 1).values(**held, attempts=1, lease_until=now - timedelta(seconds=1)))
        s.execute(update(Shot).where(Shot.id == 2).values(**held, attempts=1, lease_until=now + timedelta(minutes=1)))
        s.execute(update(Shot).where(Shot.id == 3).values(**held, attempts=3, lease_until=now - timedelta(seconds=1)))
    sent = []
    assert sweep.enqueue_shots(url, sent.append, 300, queue_empty=False, max_attempts=3) == 1
    assert sent == [1], "2 is still held; 3 killed its worker three times"
    with session_scope(url) as s:
        rows = {r.id: r for r in s.execute(select(Shot)).scalars()}
        assert (rows[1].status, rows[1].claimed_by, rows[1].lease_until) == ("pending", None, None)
        assert rows[2].status == "processing"
        assert rows[3].status == "failed" and "each of 3 attempts" in rows[3].failure_reason
    assert_standings_current(url)
