"""Initial schema: garments, shots, references, rejections, model versions, segmentations.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamps():
    return [
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def upgrade():
    op.create_table(
        "garments",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )
    op.create_table(
        "shots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("garment_id", sa.String(36), sa.ForeignKey("garments.id"), nullable=False),
        sa.Column("view", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="pending"),
        sa.Column("failure_reason", sa.Text),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("enqueued_at", sa.DateTime(timezone=True)),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        *_timestamps(),
        sa.UniqueConstraint("bucket", "key", name="uq_shots_bucket_key"),
        sa.CheckConstraint("status IN ('pending', 'processing', 'done', 'failed')", name="ck_shots_status"),
    )
    op.create_index("ix_shots_garment_id", "shots", ["garment_id"])
    op.create_index("ix_shots_status", "shots", ["status"])
    op.create_index("ix_shots_enqueued_at", "shots", ["enqueued_at"])

    op.create_table(
        "references",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("garment_id", sa.String(36), sa.ForeignKey("garments.id"), nullable=False),
        sa.Column("view", sa.String(16), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("bucket", "key", name="uq_references_bucket_key"),
    )
    op.create_index("ix_references_garment_id", "references", ["garment_id"])

    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("bucket", sa.String(255), nullable=False),
        sa.Column("key", sa.String(1024), nullable=False),
        sa.Column("etag", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("bucket", "key", name="uq_rejections_bucket_key"),
    )

    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version", sa.String(128), nullable=False, unique=True),
        sa.Column("location", sa.String(1024), nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("is_current", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("promoted_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    )

    op.create_table(
        "segmentations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("shot_id", sa.Integer, sa.ForeignKey("shots.id"), nullable=False),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("shot_etag", sa.String(128), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("first_mask_key", sa.String(1024), nullable=False),
        sa.Column("mask_key", sa.String(1024), nullable=False),
        sa.Column("cutout_key", sa.String(1024), nullable=False),
        sa.Column("overlay_key", sa.String(1024), nullable=False),
        sa.Column("threshold_first", sa.Float, nullable=False),
        sa.Column("threshold_second", sa.Float),
        sa.Column("confidence", sa.Float, nullable=False),
        sa.Column("confidence_parts", sa.JSON, nullable=False),
        sa.Column("dice", sa.Float),
        sa.Column("dice_reference_etag", sa.String(128)),
        sa.Column("score_requested_etag", sa.String(128)),
        sa.Column("timings", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.UniqueConstraint("shot_id", "model_version_id", "shot_etag", name="uq_segmentations_shot_model_etag"),
        sa.CheckConstraint("confidence >= 0 AND confidence <= 1", name="ck_segmentations_confidence"),
    )
    op.create_index("ix_segmentations_shot_id", "segmentations", ["shot_id"])


def downgrade():
    op.drop_table("segmentations")
    op.drop_table("model_versions")
    op.drop_table("rejections")
    op.drop_table("references")
    op.drop_table("shots")
    op.drop_table("garments")
