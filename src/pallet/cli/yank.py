"""``pallet yank|unyank PROJECT VERSION [--file F] [--reason R]``."""

from __future__ import annotations

import argparse

from pallet.cli.common import existing_index


def register(sub, common) -> None:  # noqa: ANN001
    for name, yanked in (("yank", True), ("unyank", False)):
        p = sub.add_parser(name, help=f"{name} a release or one of its files (PEP 592)")
        common(p)
        p.add_argument("project")
        p.add_argument("version")
        p.add_argument("--file", dest="filename", help="only this file of the release")
        if yanked:
            p.add_argument("--reason", help="shown to users by pip and uv")
        p.set_defaults(func=run, yanked=yanked)


def run(args: argparse.Namespace) -> int:
    from pallet.releases import set_yanked

    _settings, engine = existing_index(args)
    files = set_yanked(
        engine,
        args.project,
        args.version,
        yanked=args.yanked,
        reason=getattr(args, "reason", None),
        filename=args.filename,
    )
    verb = "yanked" if args.yanked else "unyanked"
    print(f"{verb} {args.project} {args.version}: {', '.join(files) or 'no files'}")
    return 0
