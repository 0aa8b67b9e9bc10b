"""64-bit ids for every table that grows with the bucket: a 32-bit id (and its sequence) runs
out after 2,147,483,647 rows. PostgreSQL only: SQLite's INTEGER ids are 64-bit already.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""
from alembic import op
import sqlalchemy as sa

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

COLUMNS = [("shots", "id"), ("references", "id"), ("rejections", "id"), ("segmentations", "id"),
           ("segmentations", "shot_id"), ("reviews", "shot_id"), ("reviews", "segmentation_id")]
SEQUENCES = ["shots_id_seq", "references_id_seq", "rejections_id_seq", "segmentations_id_seq"]


def _alter(type_, sequence_type):
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in COLUMNS:
        op.alter_column(table, column, type_=type_)
    for sequence in SEQUENCES:
        op.execute(f"ALTER SEQUENCE {sequence} AS {sequence_type}")


def upgrade():
    _alter(sa.BigInteger(), "bigint")


def downgrade():
    _alter(sa.Integer(), "integer")
