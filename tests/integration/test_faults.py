"""Faults: a worker child killed mid-task, and bad input of every kind the studio can send."""

from __future__ import annotations

import json
import os
import signal

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from cutout import imageio, naming
from cutout.db import session_scope
from cutout.schema import Rejection
from demo import synthetic
from tests.helpers import assert_standings_current
from tests.integration.conftest import run_cli, wait_for
from tests.integration.test_fleet import all_done, segmentations_of, shots_of

pytestmark = pytest.mark.integration


def test_killed_child_mid_task_still_ends_done_once(fleet_env, bucket, worker, pg_url, s3_proxy):
    gid = synthetic.garment_id("sigkill")
    key = naming.shot_key(gid, "Front")
    bucket.put(key, imageio.encode_png(synthetic.studio_shot(21, "Front")[0]), "image/png")
    gate = s3_proxy.hold(key)  # the child's first download of the shot waits here
    try:
        run_cli(fleet_env, "produce", "--once")
        assert gate["reached"].wait(180), "the worker never started the shot"
        status, _, _, attempts = shots_of(pg_url, gid)["Front"]
        assert (status, attempts) == ("processing", 1), "claimed and committed before the download"
        children = worker.children()
        assert len(children) == 1
        os.kill(children[0], signal.SIGKILL)
    finally:
        gate["release"].set()

    shots = wait_for(lambda: all_done(pg_url, gid, 1), what="shot done after the kill")
    status, reason, shot_id, attempts = shots["Front"]
    assert status == "done", reason
    assert attempts == 2, "the task ran once more after the kill"
    assert len(segmentations_of(pg_url, gid)) == 1
    assert worker.proc.poll() is None, "the worker itself survived"


def _zero_png(h, w):
    ok, buf = cv2.imencode(".png", np.zeros((h, w, 3), np.uint8))  # compresses to a few kB
    return buf.tobytes()


def test_bad_input_is_recorded_and_the_worker_goes_on(fleet_env, bucket, worker, pg_url):
    good = imageio.encode_png(synthetic.studio_shot(31, "Front")[0])
    bad = {
        "not-png": b"GIF89a this is no PNG" * 10,
        "broken-jpeg": b"\xff\xd8\xff\xe0 starts like a JPEG, but no image follows" * 10,
        "truncated": good[: len(good) // 3],
        "empty": b"",
        "over-cap": _zero_png(6000, 6000),  # 36 Mpx > CUTOUT_MAX_PIXELS=30 Mpx
        "tiny": imageio.encode_png(np.zeros((1, 1, 3), np.uint8)),
    }
    ids = {name: synthetic.garment_id(f"bad-{name}") for name in bad}
    for name, data in bad.items():
        bucket.put(naming.shot_key(ids[name], "Front"), data, "image/png")
    misnamed = f"shots/{synthetic.garment_id('misnamed')}_Left.png"
    bucket.put(misnamed, good, "image/png")
    good_id = synthetic.garment_id("good-after-bad")
    bucket.put(naming.shot_key(good_id, "Back"), good, "image/png")
    jpeg_id = synthetic.garment_id("jpeg-under-png-key")
    ok, jpeg = cv2.imencode(".jpg", np.ascontiguousarray(synthetic.studio_shot(32, "Front")[0][:, :, 2::-1]))
    bucket.put(naming.shot_key(jpeg_id, "Front"), jpeg.tobytes(), "image/png")

    sweep = json.loads(run_cli(fleet_env, "produce", "--once").stdout)
    assert sweep["rejected"] >= 1

    expected = {"not-png": "not a PNG", "broken-jpeg": "truncated JPEG", "truncated": "truncated", "empty": "0 bytes",
                "over-cap": "over the cap", "tiny": "at least 32 px"}
    for name, words in expected.items():
        shots = wait_for(lambda: all_done(pg_url, ids[name], 1), what=f"{name} recorded")
        status, reason, _, _ = shots["Front"]
        assert status == "failed" and reason.startswith("bad input") and words in reason, (name, reason)
    good_shot = wait_for(lambda: all_done(pg_url, good_id, 1), what="good shot after the bad ones")
    assert good_shot["Back"][0] == "done"
    jpeg_shot = wait_for(lambda: all_done(pg_url, jpeg_id, 1), what="the JPEG under a .png key")
    assert jpeg_shot["Front"][0] == "done", jpeg_shot
    (seg, _), = segmentations_of(pg_url, jpeg_id)
    assert "JPEG" in seg.confidence_parts["input_note"], "segmented, with a note recorded"

    with session_scope(pg_url) as s:
        reason = s.execute(select(Rejection.reason).where(Rejection.key == misnamed)).scalar_one()
    assert "Left" in reason

    report = json.loads(run_cli(fleet_env, "report", "needs-cutout", "--format", "json").stdout)
    failed = {f["key"]: f["reason"] for f in report["failed_shots"]}
    assert "not a PNG" in failed[naming.shot_key(ids["not-png"], "Front")]
    assert any(r["key"] == misnamed for r in report["rejected_keys"])
    table = run_cli(fleet_env, "report", "needs-cutout").stdout
    assert "truncated" in table and misnamed in table
    assert_standings_current(pg_url)
