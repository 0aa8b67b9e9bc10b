"""Each garment's tallest and shortest view, so that the report holds back a garment whose three
views disagree on its height (the studio's camera and turntable stay put: a garment stands as
tall in every view; see cutout.ranking.MAX_HEIGHT_SPREAD).

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


def upgrade():
    op.add_column("garment_states", sa.Column("max_height", sa.Float))
    op.add_column("garment_states", sa.Column("min_height", sa.Float))
    # Every garment's standing, computed as every write will (the heights come from the
    # segmentations' stored signals; those of models before the signal have none, and are
    # ranked as before). This revision builds on the code it ships with.
    from sqlalchemy.orm import Session

    from cutout.ranking import refresh_all

    refresh_all(Session(bind=op.get_bind()))


def downgrade():
    op.drop_column("garment_states", "min_height")
    op.drop_column("garment_states", "max_height")
