"""Token scopes, apart from the token machinery so the command line can list them without
loading the database layer."""

from __future__ import annotations

#: ``import`` uploads under the import rules (historical files; see docs/validation.md).
SCOPES = ("read", "upload", "import")
UPLOAD_SCOPES = frozenset({"upload", "import"})
