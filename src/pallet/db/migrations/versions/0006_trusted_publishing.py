"""trusted publishers, used OIDC token ids, the publisher of tokens and attested files

Additive only (two tables, nullable columns), so replicas still running the previous release keep
working while this one rolls out.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_WITH_PUBLISHER = ("tokens", "files", "file_upload_sessions")


def upgrade() -> None:
    op.create_table(
        "trusted_publishers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("identity", sa.String(length=1000), nullable=False),
        sa.Column("rules", sa.JSON(), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project", "issuer", "identity"),
    )
    op.create_index("ix_trusted_publishers_project", "trusted_publishers", ["project"])
    op.create_index("ix_trusted_publishers_issuer", "trusted_publishers", ["issuer"])
    op.create_table(
        "used_oidc_tokens",
        sa.Column("issuer", sa.String(length=500), nullable=False),
        sa.Column("jti", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("issuer", "jti"),
    )
    op.create_index("ix_used_oidc_tokens_expires_at", "used_oidc_tokens", ["expires_at"])
    for table in _WITH_PUBLISHER:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("publisher", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in _WITH_PUBLISHER:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("publisher")
    op.drop_table("used_oidc_tokens")
    op.drop_table("trusted_publishers")
