"""Retraining on accumulated cutouts, promotion, and workers picking the new model up live."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from cutout import imageio, naming
from cutout.config import Settings
from cutout.db import session_scope
from cutout.schema import ModelVersion
from demo import synthetic
from producer import sweep
from trainer.retrain import in_holdout
from worker.resources import Resources

pytestmark = pytest.mark.integration


@pytest.fixture
def calibrated_model(tiny_model, tmp_path):
    """The tiny bundle as `cutout calibrate` leaves one: run with flip TTA, its own threshold."""
    import shutil

    from cutout.segmentation import artefact

    folder = shutil.copytree(tiny_model, tmp_path / "calibrated")
    meta = artefact.read_meta(folder / "second")
    meta.tta, meta.threshold = True, 0.45
    artefact.write_meta(folder / "second", meta)
    return folder


def test_retrain_promotes_and_workers_pick_it_up(pg_url, bucket, s3_endpoint, calibrated_model, tmp_path):
    from trainer.retrain import retrain

    settings = Settings(database_url=pg_url, bucket=bucket.bucket, s3_endpoint_url=s3_endpoint,
                        model_dir=calibrated_model, model_store=str(tmp_path / "store"), min_training_pairs=4,
                        holdout_percent=30, model_check_seconds=0.0, tf_threads=1, inference_precision="float32",
                        retrain_learning_rate=1e-2)
    names = [f"retrain-{i}" for i in range(24)]
    assert any(in_holdout(synthetic.garment_id(n), 30) for n in names)
    for i, name in enumerate(names):
        gid = synthetic.garment_id(name)
        rgba, mask = synthetic.studio_shot(100 + i, "Front", size=(288, 192))
        bucket.put(naming.shot_key(gid, "Front"), imageio.encode_png(rgba), "image/png")
        bucket.put(naming.cutout_key(gid, "Front"), imageio.encode_png(imageio.rgba_cutout(rgba, mask)), "image/png")
    sweep.register(pg_url, bucket)

    worker = Resources(settings)
    before = worker.model().version

    # A fast rate and ten epochs: the random tiny bundle must be beaten honestly, by the margin.
    summary = retrain(settings, epochs=10, patience=10)
    assert summary["outcome"] == "promoted", summary
    assert summary["candidate"]["holdout_mean_dice"] > summary["current"]["holdout_mean_dice"] + settings.promote_margin
    assert summary["candidate"]["run_settings"] == summary["current"]["run_settings"], "scored alike"
    assert summary["current"]["run_settings"]["tta"] is True, "as the worker runs the calibrated bundle"
    gate = summary["promotion"]
    assert gate["refused"] == [] and gate["garments"] == summary["holdout"], "one Front view per garment here"
    assert gate["worse_share"] <= settings.promote_max_worse_share
    assert summary["holdout"] >= 1 and summary["training"] >= 4
    assert summary["current"]["version"] == before

    with session_scope(pg_url) as s:
        current = s.execute(select(ModelVersion).where(ModelVersion.is_current.is_(True))).scalar_one()
    assert current.version == summary["candidate"]["version"]
    assert current.location.startswith(str(settings.model_store))
    assert worker.model().version == current.version, "a running worker switches without a restart"
    assert current.metrics["holdout"]["mean_dice"] == summary["candidate"]["holdout_mean_dice"]
    assert {"first", "second", "manifest_sha256"} <= set(current.params)
    trained = json.loads((Path(current.location) / "first" / "model.json").read_text())["training"]
    assert trained["budget_minutes"] == settings.retrain_budget_minutes / 2, "each stage gets half the budget"
    assert trained["learning_rate"] == settings.retrain_learning_rate
    last = json.loads((Path(current.location) / "second" / "model.json").read_text())
    assert last["tta"] is True and last["threshold"] == 0.45, "the candidate runs as the model it replaces"

    few = retrain(replace(settings, min_training_pairs=10_000), epochs=1)
    assert few["outcome"].startswith("skipped")
