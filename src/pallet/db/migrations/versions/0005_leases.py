"""leases, deferred verification rules, metadata digest index

Additive only (a new table, a nullable column, an index), so replicas still running the previous
release keep working while this one rolls out.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("holder", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    with op.batch_alter_table("file_upload_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verify_rules", sa.String(length=20), nullable=True))
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.create_index("ix_files_metadata_sha256", ["metadata_sha256"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("files", schema=None) as batch_op:
        batch_op.drop_index("ix_files_metadata_sha256")
    with op.batch_alter_table("file_upload_sessions", schema=None) as batch_op:
        batch_op.drop_column("verify_rules")
    op.drop_table("leases")
