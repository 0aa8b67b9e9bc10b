"""Each garment's largest and smallest view size for its height (mask area / height squared), so
that the report holds back a garment whose views disagree on it: one view took in something
else or left part out without changing its height (see cutout.release.MAX_SIZE_SPREAD).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""
from alembic import op
import sqlalchemy as sa

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


# Every garment's standing is recomputed once the upgrade reaches head (migrations/env.py): the
# sizes come from the segmentations' stored signals (garment_fraction, height_fraction), so
# garments segmented before this revision are checked too.
REFRESHES_RANKING = True


def upgrade():
    op.add_column("garment_states", sa.Column("max_size", sa.Float))
    op.add_column("garment_states", sa.Column("min_size", sa.Float))


def downgrade():
    op.drop_column("garment_states", "min_size")
    op.drop_column("garment_states", "max_size")
