"""Two producers sweeping the same PostgreSQL database at the same moment send every due
shot exactly once between them."""

import multiprocessing
import time

import pytest

from cutout import db
from cutout.naming import shot_key
from cutout.storage import LocalStorage
from producer import sweep

pytestmark = pytest.mark.integration
N = 400


def _producer(url, barrier, sent):
    db.dispose_all()
    ids = []

    def send(shot_id):
        time.sleep(0.001)  # a broker round trip, so the two claim loops interleave
        ids.append(shot_id)

    barrier.wait()
    sweep.enqueue_shots(url, send, 3600)
    sent.extend(ids)


def test_two_producers_at_once_send_each_shot_exactly_once(empty_db, tmp_path):
    db.upgrade(empty_db)
    storage = LocalStorage(tmp_path / "bucket")
    for i in range(N):
        storage.put(shot_key(f"00000000-0000-4000-8000-{i:012d}", "Front"), b"x", "image/png")
    assert sweep.register(empty_db, storage).shots == N

    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager:
        barrier, lists = manager.Barrier(2), [manager.list(), manager.list()]
        procs = [ctx.Process(target=_producer, args=(empty_db, barrier, sent)) for sent in lists]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        assert [p.exitcode for p in procs] == [0, 0]
        a, b = list(lists[0]), list(lists[1])
    assert a and b, "both producers sent some: they really ran at the same time"
    assert sorted(a + b) == list(range(1, N + 1)), "every shot once, none twice"
