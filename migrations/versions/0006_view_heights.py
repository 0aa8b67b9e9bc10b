"""Each garment's tallest and shortest view, so that the report holds back a garment whose three
views disagree on its height (the studio's camera and turntable stay put: a garment stands as
tall in every view; see cutout.release.MAX_HEIGHT_SPREAD).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""
from alembic import op
import sqlalchemy as sa

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


# Every garment's standing is recomputed, as every write will, once the upgrade reaches head
# (migrations/env.py): the heights come from the segmentations' stored signals; those of models
# before the signal have none, and are ranked as before.
REFRESHES_RANKING = True


def upgrade():
    op.add_column("garment_states", sa.Column("max_height", sa.Float))
    op.add_column("garment_states", sa.Column("min_height", sa.Float))


def downgrade():
    op.drop_column("garment_states", "min_height")
    op.drop_column("garment_states", "max_height")
