"""the upstream proxy: name claims (names and prefixes that never go upstream; every existing
project claims its own name), proxied pages and files, pins of lockfiles, the proxy's audit log

Additive only (five tables), so replicas still running the previous release keep working while
this one rolls out; they do not claim the names of projects they create, which the proxy's
routing covers anyway (a project that exists here is always served from here).

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "name_claims",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("pattern", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=20), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pattern", "prefix"),
    )
    op.execute(
        "INSERT INTO name_claims (pattern, prefix, reason, created) "
        "SELECT normalized_name, false, 'upload', created FROM projects"
    )

    op.create_table(
        "proxied_pages",
        sa.Column("normalized_name", sa.String(length=200), nullable=False),
        sa.Column("upstream", sa.String(length=100), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("upstream_serial", sa.BigInteger(), nullable=True),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("page", sa.Text(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("normalized_name"),
    )
    op.create_table(
        "proxied_files",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("upstream", sa.String(length=100), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("stored", sa.Boolean(), nullable=False),
        sa.Column("last_used", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metadata_sha256", sa.String(length=64), nullable=True),
        sa.Column("metadata_stored", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("sha256"),
    )
    op.create_index("ix_proxied_files_project", "proxied_files", ["project"])
    op.create_table(
        "proxy_pins",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("lockfile", sa.String(length=500), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", "lockfile"),
    )
    op.create_table(
        "proxy_audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project", sa.String(length=200), nullable=False),
        sa.Column("upstream", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("decision", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_proxy_audit_at", "proxy_audit", ["at"])
    op.create_index("ix_proxy_audit_project", "proxy_audit", ["project"])


def downgrade() -> None:
    op.drop_table("proxy_audit")
    op.drop_table("proxy_pins")
    op.drop_table("proxied_files")
    op.drop_table("proxied_pages")
    op.drop_table("name_claims")
