"""One version per bundle: how a result was run (flip TTA, second pass, precision, engine) is
kept beside it in segmentations.run_settings, no longer folded into the version's name.

Workers used to register a calibrated bundle as ``<version>-tta`` while promotion registered
``<version>``: two rows for one model, the holdout figures and ``is_current`` on one and every
segmentation on the other. Each ``-tta`` row is merged into its bundle's row (created by
renaming when promotion never made one); its segmentations keep {"tta": true} as their run
settings. A shot segmented under both rows keeps the newer result, and reviews of the other
follow it.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

REFRESHES_RANKING = True  # the merged rows' segmentations now count under one model

SUFFIX = "-tta"


def upgrade():
    op.add_column("segmentations", sa.Column("run_settings", sa.JSON))
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, version FROM model_versions WHERE version LIKE :p"),
                        {"p": "%" + SUFFIX}).all()
    for tta_id, version in rows:
        base = version[: -len(SUFFIX)]
        bind.execute(sa.text("UPDATE segmentations SET run_settings = :r WHERE model_version_id = :t")
                     .bindparams(sa.bindparam("r", type_=sa.JSON)), {"r": {"tta": True}, "t": tta_id})
        base_id = bind.execute(sa.text("SELECT id FROM model_versions WHERE version = :v"), {"v": base}).scalar()
        if base_id is None:
            bind.execute(sa.text("UPDATE model_versions SET version = :v WHERE id = :t"), {"v": base, "t": tta_id})
            continue
        _merge(bind, tta_id, base_id)


def _merge(bind, tta_id: int, base_id: int) -> None:
    # Results of one shot's content under both rows: keep the newer, point reviews at it.
    pairs = bind.execute(sa.text(
        "SELECT a.id AS a, b.id AS b, a.created_at >= b.created_at AS a_newer FROM segmentations a "
        "JOIN segmentations b ON a.shot_id = b.shot_id AND a.shot_etag = b.shot_etag "
        "WHERE a.model_version_id = :t AND b.model_version_id = :b"), {"t": tta_id, "b": base_id}).all()
    for a, b, a_newer in pairs:
        keep, drop = (a, b) if a_newer else (b, a)
        bind.execute(sa.text("UPDATE reviews SET segmentation_id = :k WHERE segmentation_id = :d"), {"k": keep, "d": drop})
        bind.execute(sa.text("DELETE FROM segmentations WHERE id = :d"), {"d": drop})
    for table in ("segmentations", "reviews"):
        bind.execute(sa.text(f"UPDATE {table} SET model_version_id = :b WHERE model_version_id = :t"),
                     {"b": base_id, "t": tta_id})
    # The bundle's row keeps its holdout figures and promotion; it takes the other's rule if it has none.
    cols = "is_current, release_threshold, promoted_at"
    base = bind.execute(sa.text(f"SELECT {cols} FROM model_versions WHERE id = :i"), {"i": base_id}).one()
    other = bind.execute(sa.text(f"SELECT {cols} FROM model_versions WHERE id = :i"), {"i": tta_id}).one()
    bind.execute(sa.text("DELETE FROM model_versions WHERE id = :t"), {"t": tta_id})
    bind.execute(sa.text("UPDATE model_versions SET is_current = :c, release_threshold = :r, promoted_at = :p "
                         "WHERE id = :b"),
                 {"c": bool(base.is_current or other.is_current),
                  "r": base.release_threshold if base.release_threshold is not None else other.release_threshold,
                  "p": base.promoted_at or other.promoted_at, "b": base_id})


def downgrade():
    op.drop_column("segmentations", "run_settings")
