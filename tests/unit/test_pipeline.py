"""The shot pipeline on SQLite and a folder bucket (fast); the same code runs on the real fleet
in tests/integration."""

import numpy as np
import pytest
from sqlalchemy import func, select

from cutout import db, imageio, naming, pipeline, registry, synthetic
from cutout.config import Settings
from cutout.db import session_scope
from cutout.schema import Segmentation, Shot
from cutout.storage import LocalStorage

pytest.importorskip("tensorflow")


@pytest.fixture
def ctx(sqlite_url, tmp_path, tiny_model):
    url = sqlite_url
    settings = Settings(database_url=url, bucket=f"file://{tmp_path / 'bucket'}", model_dir=tiny_model, max_pixels=3_000_000)
    return pipeline.Context(settings)


def add(ctx, name, view, data, reference=None):
    gid = synthetic.garment_id(name)
    ctx.storage.put(naming.shot_key(gid, view), data, "image/png")
    if reference is not None:
        ctx.storage.put(naming.cutout_key(gid, view), reference, "image/png")
    registry.register(ctx.url, ctx.storage)
    with session_scope(ctx.url) as s:
        return s.execute(select(Shot.id).where(Shot.garment_id == gid, Shot.view == view)).scalar_one()


def test_a_shot_is_segmented_once(ctx):
    rgba, mask = synthetic.studio_shot(5, "Back", size=(432, 288))
    shot_id = add(ctx, "p1", "Back", imageio.encode_png(rgba), imageio.encode_png(synthetic.reference_cutout(rgba, mask)))
    assert pipeline.process_shot(ctx, shot_id) == "done"
    assert pipeline.process_shot(ctx, shot_id) == "already-done"
    with session_scope(ctx.url) as s:
        seg = s.execute(select(Segmentation)).scalar_one()
        assert s.get(Shot, shot_id).status == "done"
    assert 0 <= seg.dice <= 1 and seg.dice_reference_etag
    out = imageio.decode_png(ctx.storage.get(seg.mask_key), 10**7, want="cutout")
    assert out.shape == (432, 288)


def test_bad_input_is_recorded_not_raised(ctx):
    shot_id = add(ctx, "p2", "Front", b"not an image")
    assert pipeline.process_shot(ctx, shot_id) == "failed"
    with session_scope(ctx.url) as s:
        shot = s.get(Shot, shot_id)
        assert shot.status == "failed" and "not a PNG" in shot.failure_reason


def test_reference_of_another_size_gives_no_dice_but_says_why(ctx):
    rgba, mask = synthetic.studio_shot(6, "Front", size=(432, 288))
    small = synthetic.reference_cutout(*synthetic.studio_shot(6, "Front", size=(216, 144)))
    shot_id = add(ctx, "p3", "Front", imageio.encode_png(rgba), imageio.encode_png(small))
    assert pipeline.process_shot(ctx, shot_id) == "done"
    with session_scope(ctx.url) as s:
        seg = s.execute(select(Segmentation)).scalar_one()
    assert seg.dice is None and "144x216" in seg.confidence_parts["reference_problem"]


def test_a_missing_model_keeps_the_shot_queued(ctx, tmp_path):
    from dataclasses import replace

    broken = pipeline.Context(replace(ctx.settings, model_dir=tmp_path / "nowhere"))
    shot_id = add(ctx, "p4", "Front", imageio.encode_png(synthetic.studio_shot(1, size=(432, 288))[0]))
    with pytest.raises(pipeline.ModelUnavailable, match="CUTOUT_MODEL"):
        pipeline.process_shot(broken, shot_id)
    with session_scope(ctx.url) as s:
        assert s.get(Shot, shot_id).status == "pending"
