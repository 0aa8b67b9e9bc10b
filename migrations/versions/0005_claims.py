"""Shot claims with a lease: the task that holds a processing shot and until when, so that a
shot whose worker died goes back to the queue as soon as its lease runs out (minutes), and
never to a second worker while the first may still be running it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""
from alembic import op
import sqlalchemy as sa

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("shots", sa.Column("claimed_by", sa.String(64)))
    op.add_column("shots", sa.Column("lease_until", sa.DateTime(timezone=True)))


def downgrade():
    op.drop_column("shots", "lease_until")
    op.drop_column("shots", "claimed_by")
