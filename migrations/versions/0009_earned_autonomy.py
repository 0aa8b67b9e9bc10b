"""Earned autonomy: a model version releases garments only once the team's reviews on this
studio support the target precision (cutout.trust); until then it runs in shadow mode. Every
version starts in shadow mode, the shipped one included. Garments keep how many of their open
views come from a shadow-mode model, and their audit draw.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""
from alembic import op
import sqlalchemy as sa

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

REFRESHES_RANKING = True  # every garment's shadow count and audit draw, from its segmentations


def upgrade():
    op.add_column("model_versions", sa.Column("releasing", sa.Boolean, server_default="false", nullable=False))
    op.add_column("model_versions", sa.Column("evidence", sa.JSON))
    op.add_column("garment_states", sa.Column("shadow", sa.Integer))
    op.add_column("garment_states", sa.Column("audit_draw", sa.Float))


def downgrade():
    op.drop_column("garment_states", "audit_draw")
    op.drop_column("garment_states", "shadow")
    op.drop_column("model_versions", "evidence")
    op.drop_column("model_versions", "releasing")
