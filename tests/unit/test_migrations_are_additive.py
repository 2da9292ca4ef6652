"""Migrations only add, so replicas of the previous release keep working while a new release
rolls out (docs/deploy.md, "Upgrading"). A migration that removes or renames something, or adds a
column old code cannot insert rows without, breaks those replicas mid-upgrade: such a change
goes in two releases (expand now, contract later), and this test must be taught the exception.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pallet.db.migrate import MIGRATIONS

REMOVING = {"drop_table", "drop_column", "rename_table", "drop_index", "drop_constraint"}
VERSIONS = sorted((MIGRATIONS / "versions").glob("[0-9]*.py"))


def _upgrade(path: Path) -> ast.FunctionDef:
    tree = ast.parse(path.read_text())
    return next(
        n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "upgrade"
    )


def _problems(fn: ast.FunctionDef) -> list[str]:
    found = []
    for node in ast.walk(fn):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        name = node.func.attr
        keywords = {k.arg: k.value for k in node.keywords}
        if name in REMOVING:
            found.append(f"{name} (line {node.lineno})")
        elif name == "alter_column" and "new_column_name" in keywords:
            found.append(f"a column renamed (line {node.lineno})")
        elif name == "add_column":
            column = next((a for a in node.args if isinstance(a, ast.Call)), None)
            kw = {k.arg: k.value for k in column.keywords} if column else {}
            required = isinstance(kw.get("nullable"), ast.Constant) and not kw["nullable"].value
            if required and "server_default" not in kw:
                found.append(f"a NOT NULL column without a server default (line {node.lineno})")
    return found


def test_there_are_migrations() -> None:
    assert len(VERSIONS) >= 5


@pytest.mark.parametrize("path", VERSIONS, ids=[p.stem for p in VERSIONS])
def test_migration_only_adds(path: Path) -> None:
    assert _problems(_upgrade(path)) == []


def test_the_check_sees_a_removal() -> None:
    fn = _upgrade_of(
        "def upgrade():\n"
        "    op.drop_column('files', 'md5')\n"
        "    op.add_column('files', sa.Column('x', sa.Integer(), nullable=False))\n"
    )
    assert len(_problems(fn)) == 2


def _upgrade_of(source: str) -> ast.FunctionDef:
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.FunctionDef)
    return node
