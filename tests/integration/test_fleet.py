"""A garment's three views and one reference cutout go through the real fleet: moto S3 over
HTTP, `cutout produce --once`, a Celery worker process on Redis, PostgreSQL, the report."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from sqlalchemy import select

from cutout import imageio, naming
from cutout.db import session_scope
from cutout.metrics import dice
from cutout.schema import Segmentation, Shot
from demo import synthetic
from tests.helpers import assert_standings_current
from tests.integration.conftest import run_cli, wait_for

pytestmark = pytest.mark.integration


def shots_of(url, garment_id):
    with session_scope(url) as s:
        return {shot.view: (shot.status, shot.failure_reason, shot.id, shot.attempts)
                for shot in s.execute(select(Shot).where(Shot.garment_id == garment_id)).scalars()}


def segmentations_of(url, garment_id):
    with session_scope(url) as s:
        return s.execute(select(Segmentation, Shot.view).join(Shot).where(Shot.garment_id == garment_id)).all()


def all_done(url, garment_id, n):
    shots = shots_of(url, garment_id)
    return len(shots) == n and all(v[0] in ("done", "failed") for v in shots.values()) and shots


def test_three_views_and_a_reference_end_to_end(fleet_env, bucket, worker, pg_url, tiny_model):
    gid = synthetic.upload_garment(bucket, "e2e-1", seed=11)

    sweep = json.loads(run_cli(fleet_env, "produce", "--once").stdout)
    assert sweep["new_shots"] >= 3 and sweep["enqueued"] >= 3 and sweep["new_references"] >= 1

    shots = wait_for(lambda: all_done(pg_url, gid, 3), what="three shots done")
    assert {v[0] for v in shots.values()} == {"done"}, shots

    rows = segmentations_of(pg_url, gid)
    assert len(rows) == 3
    for seg, view in rows:
        mask = cv2.imdecode(np.frombuffer(bucket.get(seg.mask_key), np.uint8), cv2.IMREAD_UNCHANGED)
        assert mask.shape == (1728, 1152), "the mask is at the photo's original size"
        for key in (seg.cutout_key, seg.overlay_key, seg.first_mask_key):
            assert bucket.get(key)
        assert seg.confidence == pytest.approx(
            seg.confidence_parts["decisiveness"] * seg.confidence_parts["agreement"], abs=1e-4)
        assert (seg.dice is not None) == (view == "Front")
        assert {"download_s", "decode_s", "first_pass_s", "second_pass_s", "encode_s", "upload_s"} <= set(seg.timings)
    cutout = cv2.imdecode(np.frombuffer(bucket.get(rows[0][0].cutout_key), np.uint8), cv2.IMREAD_UNCHANGED)
    assert cutout.shape == (1728, 1152, 4)

    report = json.loads(run_cli(fleet_env, "report", "needs-cutout", "--format", "json", "--min-confidence", "1.01").stdout)
    entry = next(g for g in report["garments"] if g["garment_id"] == gid)
    assert set(entry["views"]) == set(naming.VIEWS)
    assert entry["views"]["Front"]["dice"] is not None

    # A second sweep enqueues nothing; running the task again adds no row.
    again = json.loads(run_cli(fleet_env, "produce", "--once").stdout)
    assert again["enqueued"] == 0 and again["new_shots"] == 0
    from cutout.config import Settings
    from worker.app import start_process
    from worker.resources import Resources
    from worker.tasks import segment_shot

    settings = Settings(database_url=pg_url, bucket=bucket.bucket, s3_endpoint_url=fleet_env["CUTOUT_S3_ENDPOINT_URL"],
                        model_dir=tiny_model)
    start_process(Resources(settings))
    assert segment_shot.apply(args=[shots["Front"][2]]).get() == "already-done"
    assert len(segmentations_of(pg_url, gid)) == 3


def test_reference_arriving_later_is_scored_without_rerunning(fleet_env, bucket, worker, pg_url):
    gid = synthetic.garment_id("late-reference")
    rgba, mask = synthetic.studio_shot(12, "Back")
    bucket.put(naming.shot_key(gid, "Back"), imageio.encode_png(rgba), "image/png")
    run_cli(fleet_env, "produce", "--once")
    wait_for(lambda: all_done(pg_url, gid, 1), what="shot done")
    (seg, _), = segmentations_of(pg_url, gid)
    assert seg.dice is None

    bucket.put(naming.cutout_key(gid, "Back"), imageio.encode_png(imageio.rgba_cutout(rgba, mask)), "image/png")
    sweep = json.loads(run_cli(fleet_env, "produce", "--once").stdout)
    assert sweep["enqueued"] == 0 and sweep["scoring_enqueued"] == 1
    scored = wait_for(lambda: [r for r in segmentations_of(pg_url, gid) if r[0].dice is not None], what="Dice")
    assert len(scored) == 1 and scored[0][0].id == seg.id
    stored = imageio.decode_png(bucket.get(seg.mask_key), 10**8, want="cutout")
    assert scored[0][0].dice == pytest.approx(dice(stored, mask))
    assert_standings_current(pg_url)

