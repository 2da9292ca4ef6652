"""``pallet token create|list|revoke``. ``create`` prints the token alone on its last line.

All three act on an index that already exists: pointed at a data dir or database URL without a
migrated Pallet database they stop with one line instead of creating one (``create --init``
does create it)."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from pallet.auth.scopes import SCOPES
from pallet.cli.common import existing_index


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("token", help="manage API tokens")
    tsub = p.add_subparsers(dest="token_command", required=True)
    c = tsub.add_parser("create", help="create a token (printed once, stored only as a hash)")
    common(c)
    c.add_argument("--scope", choices=SCOPES, default="upload", help="upload implies read")
    c.add_argument("--project", action="append", help="limit to a project (repeatable)")
    c.add_argument("--description", default="")
    c.add_argument("--expires-in-days", type=float, help="expire after this many days")
    c.add_argument(
        "--init",
        action="store_true",
        help="create and migrate the database (and secret key) if there is none yet",
    )
    c.set_defaults(func=run_create)
    ls = tsub.add_parser("list", help="list tokens (never their secrets)")
    common(ls)
    ls.set_defaults(func=run_list)
    rv = tsub.add_parser("revoke", help="revoke a token by id")
    common(rv)
    rv.add_argument("token_id")
    rv.set_defaults(func=run_revoke)


def run_create(args: argparse.Namespace) -> int:
    from pallet.auth.tokens import create_token
    from pallet.db.session import write_session

    settings, engine = existing_index(args, init=args.init, secret=True)
    expires = timedelta(days=args.expires_in_days) if args.expires_in_days else None
    with write_session(engine, durable=True) as s:
        row, token = create_token(
            s,
            settings.secret_key,
            scope=args.scope,
            projects=args.project,
            description=args.description,
            expires_in=expires,
        )
    scope = ", ".join(row.projects) if row.projects else "all projects"
    print(f"Created {args.scope} token {row.id} for {scope}. It is shown only once:")
    print(token)
    return 0


def run_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from pallet.db.models import Token
    from pallet.db.session import read_session

    _settings, engine = existing_index(args)
    now = datetime.now(UTC)
    with read_session(engine) as s:
        rows = s.execute(select(Token).order_by(Token.created)).scalars().all()
        for t in rows:
            expires = t.expires.replace(tzinfo=t.expires.tzinfo or UTC) if t.expires else None
            state = (
                "revoked" if t.revoked else "expired" if expires and expires <= now else "active"
            )
            projects = ",".join(t.projects) if t.projects else "*"
            print(f"{t.id}  {t.scope:<6}  {state:<7}  {projects}  {t.description}")
    return 0


def run_revoke(args: argparse.Namespace) -> int:
    from pallet.db.models import Token
    from pallet.db.session import write_session

    _settings, engine = existing_index(args)
    with write_session(engine, durable=True) as s:
        row = s.get(Token, args.token_id)
        if row is None:
            print(f"no token with id {args.token_id}")
            return 1
        row.revoked = datetime.now(UTC)
    print(f"revoked {args.token_id}")
    return 0
