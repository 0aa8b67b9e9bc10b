"""Sessions that end: each user's session epoch, carried in the signed cookie and checked on
every request, so that logging out, a password change and disabling end every session the
user has open (a cookie alone cannot be revoked).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""
from alembic import op
import sqlalchemy as sa

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("users", sa.Column("session_epoch", sa.Integer, server_default="0", nullable=False))


def downgrade():
    op.drop_column("users", "session_epoch")
