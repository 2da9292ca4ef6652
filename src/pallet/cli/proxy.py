"""``pallet proxy-audit``: what the upstream proxy fetched from where, newest first: the
routing decision, the URL, the digest checked and the outcome (docs/proxy.md)."""

from __future__ import annotations

import argparse
import json

from pallet.cli.common import existing_index


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("proxy-audit", help="what the upstream proxy fetched, from where, and why")
    common(p)
    p.add_argument("--project", help="one project (its normalised name)")
    p.add_argument("--limit", type=int, default=100, help="entries, newest first (100)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pallet.db import audit
    from pallet.db.session import read_session
    from pallet.proxy.audit import entry

    _settings, engine = existing_index(args)
    with read_session(engine) as s:
        rows = audit.recent(s, project=args.project, limit=max(1, args.limit))
        for r in rows:
            if args.json:
                print(json.dumps(entry(r)))
            else:
                digest = f" sha256={r.sha256}" if r.sha256 else ""
                print(f"{r.at.isoformat()}  {r.project}  {r.kind} from {r.upstream}: "
                      f"{r.outcome}  ({r.decision}) {r.url}{digest}")  # fmt: skip
    return 0
