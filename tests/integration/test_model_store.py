"""Models through the bucket: a bundle promoted to the S3 model store reaches two workers with
caches of their own (as on two machines), without a restart; a tampered bundle never loads."""

from __future__ import annotations

import json
import uuid

import pytest
from sqlalchemy import select

from cutout import bundle, db, models
from cutout.db import session_scope
from cutout.model_store import MANIFEST, ModelStoreError, fetch, publish
from cutout.schema import ModelVersion, Segmentation, Shot
from demo import synthetic
from tests.helpers import make_tiny_bundle
from tests.integration.conftest import REDIS_URL, Worker, run_cli, wait_for


@pytest.fixture
def own_fleet(fleet_env, empty_db, own_bucket, s3_endpoint, tmp_path):
    """A database, bucket and queue of their own, so promoting here changes no other test's model
    and no other test's shots are swept in."""
    db.upgrade(empty_db)
    env = {**fleet_env, "CUTOUT_DATABASE_URL": empty_db, "CUTOUT_QUEUE": f"store-{uuid.uuid4().hex[:8]}",
           "CUTOUT_BUCKET": own_bucket.bucket, "CUTOUT_S3_ENDPOINT_URL": s3_endpoint, "CUTOUT_MODEL_CHECK_SECONDS": "1",
           "CUTOUT_MODEL_STORE": f"s3://{own_bucket.bucket}/models/"}
    workers = []
    for name in ("a", "b"):
        workers.append(Worker({**env, "CUTOUT_MODEL_CACHE": str(tmp_path / f"cache-{name}")}, tmp_path / f"{name}.log"))
    yield env, workers
    for w in workers:
        w.stop()
    import redis

    redis.Redis.from_url(REDIS_URL).delete(env["CUTOUT_QUEUE"])


def versions_used(url):
    with session_scope(url) as s:
        return s.execute(select(ModelVersion.version, Shot.status).select_from(Shot)
                         .outerjoin(Segmentation, Segmentation.shot_id == Shot.id)
                         .outerjoin(ModelVersion, ModelVersion.id == Segmentation.model_version_id)).all()


def test_two_workers_with_their_own_caches_switch_to_a_model_promoted_through_the_bucket(own_fleet, own_bucket, tmp_path):
    env, workers = own_fleet
    bucket = own_bucket
    url = env["CUTOUT_DATABASE_URL"]
    synthetic.upload_garment(bucket, f"store-before-{uuid.uuid4().hex[:6]}", seed=1, references=())
    run_cli(env, "produce", "--once")
    wait_for(lambda: all(status == "done" for _, status in versions_used(url)) and versions_used(url),
             what="the first garment")
    shipped = {v for v, _ in versions_used(url)}

    candidate = make_tiny_bundle(tmp_path / "candidate", seed=7)
    with session_scope(url) as s:
        version, location = models.promote(s, candidate, env["CUTOUT_MODEL_STORE"], {"mean_dice": 0.5},
                                           env["CUTOUT_S3_ENDPOINT_URL"])
    assert location.startswith(env["CUTOUT_MODEL_STORE"]) and version not in shipped
    assert bucket.get(location.split("/", 3)[3] + MANIFEST)

    caches = [tmp_path / f"cache-{name}" / version for name in ("a", "b")]
    for round_ in range(8):  # until each worker has taken a shot since the promotion
        synthetic.upload_garment(bucket, f"store-after-{round_}-{uuid.uuid4().hex[:6]}", seed=2 + round_, references=())
        run_cli(env, "produce", "--once")
        wait_for(lambda: all(status == "done" for _, status in versions_used(url)), what="the new shots")
        if all((c / MANIFEST).exists() for c in caches):
            break
    assert all((c / MANIFEST).exists() for c in caches), "both workers fetched the promoted model"
    assert bundle.version(caches[0]) == version
    newest = [v for v, _ in versions_used(url) if v not in shipped]
    assert newest and set(newest) == {version}, "every shot after the switch ran the promoted model"
    for w in workers:
        assert w.proc.poll() is None, "no restart"


def test_a_tampered_or_unrecorded_bundle_is_refused(bucket, s3_endpoint, tmp_path):
    store = f"s3://{bucket.bucket}/models-{uuid.uuid4().hex[:6]}/"
    made = make_tiny_bundle(tmp_path / "bundle", seed=3)
    version = bundle.version(made)
    location, digest = publish(made, version, store, s3_endpoint)
    good = fetch(location, digest, tmp_path / "cache-ok", s3_endpoint)
    assert bundle.version(good) == version

    with pytest.raises(ModelStoreError, match="not the one the database recorded"):
        fetch(location, "0" * 64, tmp_path / "cache-1", s3_endpoint)
    prefix = location.split("/", 3)[3]
    bucket.put(prefix + "first/model.json", b'{"tampered": true}', "application/json")
    with pytest.raises(ModelStoreError, match="does not match its manifest"):
        fetch(location, digest, tmp_path / "cache-2", s3_endpoint)
    assert not any((tmp_path / "cache-2").iterdir()), "nothing half-downloaded is left in the cache"
    manifest = json.loads(bucket.get(prefix + MANIFEST))
    assert set(manifest["files"]) == {"first/model.json", "first/model.weights.h5", "second/model.json",
                                      "second/model.weights.h5"}


def test_a_promoted_calibrated_bundle_and_the_workers_results_share_one_version(empty_db, own_bucket, s3_endpoint,
                                                                                  tmp_path):
    """Promotion and the worker name a bundle alike, whether it runs with flip TTA or not: its
    holdout figures, is_current and every segmentation sit on one model_versions row, and how
    it ran is kept beside each result."""
    from dataclasses import replace

    from cutout import naming
    from cutout.config import Settings
    from cutout.segmentation import artefact
    from producer import sweep
    from worker import job
    from worker.resources import Resources

    db.upgrade(empty_db)
    candidate = make_tiny_bundle(tmp_path / "calibrated", seed=11)
    meta = artefact.read_meta(candidate / "second")
    meta.tta = True  # as `cutout calibrate` leaves a bundle
    artefact.write_meta(candidate / "second", meta)
    store = f"s3://{own_bucket.bucket}/models-{uuid.uuid4().hex[:6]}/"
    with session_scope(empty_db) as s:
        version, _ = models.promote(s, candidate, store, {"mean_dice": 0.5}, s3_endpoint)

    gid = synthetic.garment_id(f"identity-{uuid.uuid4().hex[:6]}")
    rgba, _ = synthetic.studio_shot(5, "Front", size=(144, 96))
    from cutout import imageio

    own_bucket.put(naming.shot_key(gid, "Front"), imageio.encode_png(rgba), "image/png")
    sweep.register(empty_db, own_bucket)
    settings = Settings(database_url=empty_db, bucket=own_bucket.bucket, s3_endpoint_url=s3_endpoint,
                        model_cache=tmp_path / "cache", inference_precision="float32", tf_threads=1)
    worker = Resources(settings)
    with session_scope(empty_db) as s:
        shot_id = s.execute(select(Shot.id).where(Shot.garment_id == gid)).scalar_one()
    assert job.segment_shot(worker, shot_id) == "done"
    plain = Resources(replace(settings, tta=False))  # a worker told to skip TTA runs the same model
    assert plain.model().version_id == worker.model().version_id

    with session_scope(empty_db) as s:
        rows = s.execute(select(ModelVersion)).scalars().all()
        seg = s.execute(select(Segmentation).where(Segmentation.shot_id == shot_id)).scalar_one()
        assert [r.version for r in rows] == [version], "one row for the bundle"
        assert rows[0].is_current and rows[0].metrics["holdout"] == {"mean_dice": 0.5}
        assert seg.model_version_id == rows[0].id
        assert seg.run_settings["tta"] is True and seg.run_settings["second_pass"] is True
