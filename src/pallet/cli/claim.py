"""``pallet claim NAME|NAMESPACE-* ...``, ``pallet claim --list``, ``pallet claim --remove ...``:
names and namespaces that never go to an upstream index, whether or not a project has them yet
(see ``pallet.core.routing``). Every private upload claims its own name already."""

from __future__ import annotations

import argparse

from pallet.cli.common import existing_index


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "claim",
        help="reserve names or PEP 752 namespaces (acme-*) for this index: never asked of an upstream",
    )
    common(p)
    p.add_argument("patterns", nargs="*", metavar="NAME|NAMESPACE-*")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--list", action="store_true", help="list the claims")
    what.add_argument("--remove", action="store_true", help="remove these claims")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pallet.core.routing import Claim
    from pallet.db import claims
    from pallet.db.session import read_session, write_session

    if args.list == bool(args.patterns):
        raise SystemExit("error: name one or more NAME or NAMESPACE-*, or pass --list alone")
    try:
        wanted = [Claim.parse(p) for p in args.patterns]
    except ValueError as exc:
        raise SystemExit(f"error: {exc}") from None
    _settings, engine = existing_index(args)
    if args.list:
        with read_session(engine) as s:
            for claim, reason, created in claims.listed(s):
                print(f"{claim}\t{reason}\t{created:%Y-%m-%d %H:%M}")
        return 0
    missing = 0
    with write_session(engine, durable=True) as s:
        for claim in wanted:
            if args.remove:
                done = claims.remove(s, claim)
                missing += not done
                print(f"removed {claim}" if done else f"not claimed: {claim}")
            else:
                done = claims.add(s, claim, "operator")
                print(("claimed " if done else "already claimed: ") + str(claim))
            if done:  # their pages' PEP 752 namespaces changed
                claims.touch_covered(s, claim)
    return 1 if missing else 0
