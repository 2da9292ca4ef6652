"""longer uploaded_via

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.alter_column(
            "uploaded_via",
            existing_type=sa.VARCHAR(length=40),
            type_=sa.String(length=100),
            existing_nullable=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.alter_column(
            "uploaded_via",
            existing_type=sa.String(length=100),
            type_=sa.VARCHAR(length=40),
            existing_nullable=False,
        )
