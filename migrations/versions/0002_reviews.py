"""The review page: its users, failed logins (rate limiting) and the team's reviews.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


# 64-bit ids; SQLite (the demo) autoincrements only INTEGER.
BIG_ID = sa.BigInteger().with_variant(sa.Integer, "sqlite")


def _created_at():
    return sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False)


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(256), nullable=False),
        _created_at(),
    )
    op.create_table(
        "login_failures",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("remote_addr", sa.String(64), nullable=False),
        _created_at(),
    )
    for column in ("username", "remote_addr", "created_at"):
        op.create_index(f"ix_login_failures_{column}", "login_failures", [column])
    op.create_table(
        "reviews",
        sa.Column("id", BIG_ID, primary_key=True),
        sa.Column("shot_id", sa.Integer, sa.ForeignKey("shots.id"), nullable=False),
        sa.Column("shot_etag", sa.String(128), nullable=False),
        sa.Column("segmentation_id", sa.Integer, sa.ForeignKey("segmentations.id")),
        sa.Column("model_version_id", sa.Integer, sa.ForeignKey("model_versions.id")),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("decision", sa.String(24), nullable=False),
        sa.Column("cutout_key", sa.String(1024)),
        _created_at(),
        sa.CheckConstraint("decision IN ('approved', 'needs_manual_cut', 'corrected')", name="ck_reviews_decision"),
    )
    op.create_index("ix_reviews_shot_id", "reviews", ["shot_id"])
    op.create_index("ix_reviews_created_at", "reviews", ["created_at"])


def downgrade():
    op.drop_table("reviews")
    op.drop_table("login_failures")
    op.drop_table("users")
