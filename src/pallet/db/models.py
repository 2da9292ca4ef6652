"""Tables. Uniqueness that must hold across replicas is a constraint here, never a Python check.

- one project per normalised name; one release per (project, canonical version);
- one file per filename, forever (``files.filename`` unique + ``deleted_filenames`` tombstones);
- ``journal`` orders every change; a project's ``last_serial`` is its newest journal id, which is
  what read-path caches are validated against, so every replica sees a publish on the next request.

``files.published`` and ``projects.reserved_by`` exist for Upload 2.0: a publish inserts its file
rows unpublished (reserving the names) and flips them in one transaction; a first-release session
reserves a project name that stays invisible until published.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Project(Base):
    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    normalized_name: Mapped[str] = mapped_column(String(200), unique=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_serial: Mapped[int] = mapped_column(BigInteger, default=0)
    # Set while a first-release publishing session holds the name (Upload 2.0); NULL = visible.
    reserved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)

    releases: Mapped[list[Release]] = relationship(back_populates="project")


class Release(Base):
    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "canonical_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(100))
    canonical_version: Mapped[str] = mapped_column(String(100))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    requires_python: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Core metadata of the first file uploaded, as the JSON API's "info" (pallet.core.metadata).
    info: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    project: Mapped[Project] = relationship(back_populates="releases")
    files: Mapped[list[File]] = relationship(back_populates="release")


class File(Base):
    __tablename__ = "files"
    __table_args__ = (Index("ix_files_release_published", "release_id", "published"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    release_id: Mapped[int] = mapped_column(ForeignKey("releases.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255), unique=True)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    blake2_256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)  # only when computed
    upload_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    packagetype: Mapped[str] = mapped_column(String(20))
    python_version: Mapped[str] = mapped_column(String(100))
    requires_python: Mapped[str | None] = mapped_column(String(200), nullable=True)
    yanked: Mapped[bool] = mapped_column(Boolean, default=False)
    yanked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # sha256 of the extracted METADATA (PEP 658/714); NULL when not extracted.
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    attestations: Mapped[list | None] = mapped_column(JSON, nullable=True)
    #: PEP 740 publisher of ``attestations`` (the trusted publisher of the token that sent them).
    publisher: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    uploaded_via: Mapped[str] = mapped_column(String(100), default="legacy")

    release: Mapped[Release] = relationship(back_populates="files")


class DeletedFilename(Base):
    """A filename once used is never reusable, even after the file is deleted."""

    __tablename__ = "deleted_filenames"

    filename: Mapped[str] = mapped_column(String(255), primary_key=True)
    deleted: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Token(Base):
    """API tokens. Only an HMAC of the secret is stored; the public id locates the row."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(String(200), default="")
    scope: Mapped[str] = mapped_column(String(20))  # "read" | "upload"
    projects: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None = all projects
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    revoked: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: Set on a token minted by trusted publishing: the identity that asked for it (PEP 740's
    #: publisher object), recorded with every file the token uploads.
    publisher: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)


class TrustedPublisher(Base):
    """A CI identity allowed to mint upload tokens for one project (pallet.auth.oidc).

    ``rules`` are the provider's settings (``repository``, ``workflow``, ``environment``...);
    ``identity`` is their canonical text, unique per project and issuer so a publisher is added
    once. ``pending``: the project did not exist when the publisher was added; the first token
    minted for it claims the name, and a project created meanwhile by anyone else voids it.
    """

    __tablename__ = "trusted_publishers"
    __table_args__ = (UniqueConstraint("project", "issuer", "identity"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project: Mapped[str] = mapped_column(String(200), index=True)  # normalised name
    kind: Mapped[str] = mapped_column(String(20))  # github | gitlab | generic
    issuer: Mapped[str] = mapped_column(String(500), index=True)
    identity: Mapped[str] = mapped_column(String(1000))
    rules: Mapped[dict] = mapped_column(JSON)
    pending: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UsedOidcToken(Base):
    """``jti`` of every OIDC token exchanged, until it expires: a token is exchanged once, on
    whichever replica it reaches first (the primary key decides, not a Python check)."""

    __tablename__ = "used_oidc_tokens"

    issuer: Mapped[str] = mapped_column(String(500), primary_key=True)
    jti: Mapped[str] = mapped_column(String(200), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class JournalEntry(Base):
    """Append-only log of changes; its id is the index serial (like PyPI's last_serial)."""

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    project_id: Mapped[int] = mapped_column(Integer, index=True)
    action: Mapped[str] = mapped_column(String(200))
    submitted: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class UploadSession(Base):
    """A PEP 694 publishing session for one (project, version).

    ``live_key`` is ``<normalized name>==<canonical version>`` while the session is non-terminal
    and NULL afterwards: its unique constraint is the "one live session per name-version" rule,
    enforced by the database across replicas (NULLs never collide).
    """

    __tablename__ = "upload_sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    project_name: Mapped[str] = mapped_column(String(200))
    normalized_name: Mapped[str] = mapped_column(String(200), index=True)
    version: Mapped[str] = mapped_column(String(100))
    canonical_version: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    live_key: Mapped[str | None] = mapped_column(String(310), unique=True, nullable=True)
    stage_token: Mapped[str] = mapped_column(String(64), unique=True)
    reserved_project: Mapped[bool] = mapped_column(Boolean, default=False)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    finished: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    notices: Mapped[list | None] = mapped_column(JSON, nullable=True)


class FileUploadSession(Base):
    """One file's upload inside a publishing session.

    ``live_filename`` is the filename while the file session is not canceled, NULL after: with
    the session id it is unique, so a session never holds two live uploads of one name.
    """

    __tablename__ = "file_upload_sessions"
    __table_args__ = (UniqueConstraint("session_id", "live_filename"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        ForeignKey("upload_sessions.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    live_filename: Mapped[str | None] = mapped_column(String(255), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    hashes: Mapped[dict] = mapped_column(JSON)  # as declared by the client
    mechanism: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(20))
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Filled when bytes are received and verified:
    staged_key: Mapped[str | None] = mapped_column(String(512), nullable=True)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    blake2_256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    md5: Mapped[str | None] = mapped_column(String(32), nullable=True)
    received_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    packagetype: Mapped[str | None] = mapped_column(String(20), nullable=True)
    python_version: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requires_python: Mapped[str | None] = mapped_column(String(200), nullable=True)
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    info: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    attestations: Mapped[list | None] = mapped_column(JSON, nullable=True)
    publisher: Mapped[dict | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    notices: Mapped[list | None] = mapped_column(JSON, nullable=True)
    mechanism_state: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: The upload rules a deferred verification applies (``UploadRules.name``), so another
    #: replica can finish it when this one dies mid-way.
    verify_rules: Mapped[str | None] = mapped_column(String(20), nullable=True)


class Lease(Base):
    """Who does a unit of background work (pallet.db.leases)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProjectSearch(Base):
    """What search matches a visible project by: its name and its latest release's summary
    (``pallet.index.search`` writes and reads it).

    Each database indexes it with its own engine, built by migration 0007 and not declared
    here because it exists on one engine only: on PostgreSQL a generated ``document`` tsvector
    column with a GIN index, on SQLite the FTS5 table ``project_search_fts`` (external content,
    kept in step by triggers). ``schema_comparison_includes`` tells Alembic to leave them out.
    """

    __tablename__ = "project_search"

    project_id: Mapped[int] = mapped_column(
        ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    name: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text, default="")


class NameClaim(Base):
    """A name or a PEP 752 namespace that never goes to an upstream index (pallet.core.routing):
    claimed by the operator (``pallet claim``) or by the first private upload of the name,
    and kept when the project is deleted, so removing it never hands the name upstream."""

    __tablename__ = "name_claims"
    __table_args__ = (UniqueConstraint("pattern", "prefix"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    pattern: Mapped[str] = mapped_column(String(200))  # a normalised name, or namespace
    prefix: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str] = mapped_column(String(20))  # "upload" or "operator"
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProxiedPage(Base):
    """An upstream index's project page as last fetched (``pallet.proxy.pages``), kept to
    revalidate with its ETag and to serve, stale, when the upstream is down. ``version`` counts
    changes of ``page``: what the read path's cache is validated against, as ``last_serial``
    is for a private project."""

    __tablename__ = "proxied_pages"

    normalized_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    upstream: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(BigInteger)
    upstream_serial: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    page: Mapped[str] = mapped_column(Text)  # the parsed page, as JSON
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # last 200 or 304


class ProxiedFile(Base):
    """A file an upstream lists, by content address: where to fetch it, and whether its bytes
    are stored (then the blob is referenced, and garbage collection keeps it)."""

    __tablename__ = "proxied_files"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    project: Mapped[str] = mapped_column(String(200), index=True)
    upstream: Mapped[str] = mapped_column(String(100))
    url: Mapped[str] = mapped_column(Text)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    stored: Mapped[bool] = mapped_column(Boolean, default=False)
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # PEP 658: the upstream's ``<url>.metadata``, by its listed sha256, once fetched and checked.
    metadata_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    metadata_stored: Mapped[bool] = mapped_column(Boolean, default=False)


class ProxyPin(Base):
    """A proxied file a registered lockfile names (``pallet prefetch``): never evicted."""

    __tablename__ = "proxy_pins"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    lockfile: Mapped[str] = mapped_column(String(500), primary_key=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ProxyAudit(Base):
    """What the proxy fetched from where (append-only: nothing updates or deletes a row):
    the routing decision that allowed it, the URL (never credentials), the digest checked, and
    the outcome (``stored``, ``refused: ...``, ``not-modified``, ``stale: ...``)."""

    __tablename__ = "proxy_audit"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    project: Mapped[str] = mapped_column(String(200), index=True)
    upstream: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(20))  # "page", "file" or "metadata"
    url: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decision: Mapped[str] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(Text)


#: Objects of one engine only, beside ``project_search`` (see ``ProjectSearch``): SQLite's FTS5
#: table, which keeps its index in tables named after it, and PostgreSQL's tsvector and index.
_FTS5_TABLE = "project_search_fts"
_ON_PROJECT_SEARCH = {("column", "document"), ("index", "ix_project_search_document")}


def schema_comparison_includes(name: str | None, type_: str, parent_names) -> bool:  # noqa: ANN001
    """Alembic's ``include_name`` hook (``parent_names``: its mapping, ``table_name``...):
    False for the search objects of one engine only, which no model can declare, so comparing
    the models with a migrated database (autogenerate, tests) does not report them as strays."""
    if type_ == "table":
        return not (name == _FTS5_TABLE or (name or "").startswith(_FTS5_TABLE + "_"))
    if parent_names.get("table_name") == "project_search":
        return (type_, name) not in _ON_PROJECT_SEARCH
    return True
