"""Reports in SQL at scale: each garment's standing (garment_states, kept current by every
write; rebuilt here for the garments already there), each model's release rule as a column,
and the indexes the refresh walks (newest segmentation and newest review per shot).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None
REFRESHES_RANKING = True


def upgrade():
    op.add_column("model_versions", sa.Column("release_threshold", sa.Float))
    from cutout.models import release_threshold  # this revision builds on the code it ships with (see below)

    bind = op.get_bind()
    versions = sa.table("model_versions", sa.column("id", sa.Integer), sa.column("params", sa.JSON),
                        sa.column("release_threshold", sa.Float))
    for row in bind.execute(sa.select(versions.c.id, versions.c.params)).all():
        bind.execute(versions.update().where(versions.c.id == row.id)
                     .values(release_threshold=release_threshold(row.params)))
    op.create_index("ix_segmentations_shot_newest", "segmentations", ["shot_id", "created_at", "id"])
    op.create_index("ix_reviews_shot_newest", "reviews", ["shot_id", "created_at", "id"])
    op.create_table(
        "garment_states",
        sa.Column("garment_id", sa.String(36), sa.ForeignKey("garments.id"), primary_key=True),
        *(sa.Column(name, sa.Integer, nullable=False) for name in ("views", "waiting", "failed", "manual", "settled",
                                                                    "reviewed")),
        *(sa.Column(name, sa.Float) for name in ("min_margin", "min_confidence", "min_dice", "score")),
        sa.Column("segmented_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_garment_states_score", "garment_states", ["score", "garment_id"])
    # The standing of garments registered before this revision is computed once the upgrade
    # reaches head (migrations/env.py): cutout.ranking writes the head's columns.


def downgrade():
    op.drop_table("garment_states")
    op.drop_index("ix_reviews_shot_newest", "reviews")
    op.drop_index("ix_segmentations_shot_newest", "segmentations")
    op.drop_column("model_versions", "release_threshold")
