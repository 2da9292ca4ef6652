"""``pallet prefetch LOCKFILE --index-url URL [--pin]``: warm a proxying index with the files a
lockfile names (pylock.toml, uv.lock, requirements.txt with hashes), by sha256, through the
running server: it fetches, checks and stores each. ``--pin`` registers the lockfile, so
eviction never takes its files; ``--unpin`` forgets it (docs/proxy.md)."""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections import defaultdict
from pathlib import Path

from pallet.cli.common import existing_index


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser("prefetch", help="fetch (and pin) the files a lockfile names, by hash")
    common(p)
    p.add_argument("lockfile", type=Path, help="pylock.toml, uv.lock or requirements.txt")
    p.add_argument("--index-url", help="the proxying index's /simple/ URL (not needed to unpin)")
    p.add_argument("--token", help="a read token, for a private index")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--pin", action="store_true", help="never evict these files")
    what.add_argument("--unpin", action="store_true", help="forget this lockfile's pins")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pallet.core.lockfiles import LockfileError, read

    label = str(args.lockfile.resolve())
    if args.unpin:
        return _unpin(args, label)
    if not args.index_url:
        raise SystemExit("error: --index-url is needed to fetch")
    try:
        pins = read(args.lockfile.name, args.lockfile.read_text())
    except (OSError, LockfileError) as exc:
        raise SystemExit(f"error: {args.lockfile}: {exc}") from None
    fetched, missing = _fetch(args.index_url, args.token, pins)
    if args.pin:
        _pin(args, label, fetched)
    print(f"{len(fetched)} of {len(pins)} files fetched and checked"
          + (f"; {len(missing)} not offered by the index" if missing else "")
          + ("; pinned" if args.pin else ""))  # fmt: skip
    for project, sha in missing:
        print(f"  not found: {project} sha256={sha}", file=sys.stderr)
    return 1 if missing else 0


def _fetch(index_url: str, token: str | None, pins: list) -> tuple[list[str], list]:  # noqa: ANN001
    import httpx

    wanted: dict[str, set[str]] = defaultdict(set)
    for pin in pins:
        wanted[pin.project].add(pin.sha256)
    auth = ("__token__", token) if token else None
    base = index_url.rstrip("/") + "/"
    fetched, missing = [], []
    with httpx.Client(auth=auth, timeout=600, follow_redirects=True, trust_env=False) as c:
        for project, digests in sorted(wanted.items()):
            page_url = f"{base}{project}/"
            page = c.get(page_url, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            files = page.json().get("files", []) if page.status_code == 200 else []
            by_sha = {f["hashes"].get("sha256"): f for f in files if isinstance(f, dict)}
            for sha in sorted(digests):
                entry = by_sha.get(sha)
                if entry is None:
                    missing.append((project, sha))
                    continue
                digest = hashlib.sha256()
                with c.stream("GET", str(httpx.URL(page_url).join(entry["url"]))) as r:
                    if r.status_code != 200:
                        missing.append((project, sha))
                        continue
                    for chunk in r.iter_bytes(1 << 20):
                        digest.update(chunk)
                if digest.hexdigest() != sha:
                    missing.append((project, sha))
                    continue
                fetched.append(sha)
    return fetched, missing


def _pin(args: argparse.Namespace, label: str, digests: list[str]) -> None:
    from datetime import UTC, datetime

    from pallet.db.models import ProxyPin
    from pallet.db.session import write_session

    _settings, engine = existing_index(args)
    with write_session(engine, durable=True) as s:
        have = {p.sha256 for p in s.query(ProxyPin).filter(ProxyPin.lockfile == label[:500])}
        for sha in sorted(set(digests) - have):
            s.add(ProxyPin(sha256=sha, lockfile=label[:500], created=datetime.now(UTC)))


def _unpin(args: argparse.Namespace, label: str) -> int:
    from sqlalchemy import delete

    from pallet.db.models import ProxyPin
    from pallet.db.session import write_session

    _settings, engine = existing_index(args)
    with write_session(engine, durable=True) as s:
        gone = s.execute(delete(ProxyPin).where(ProxyPin.lockfile == label[:500])).rowcount  # type: ignore[attr-defined]
    print(f"{gone} pins of {args.lockfile} removed")
    return 0
