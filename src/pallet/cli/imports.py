"""``pallet import PATH...``: put existing distribution files (a mirror, vendored wheels, an old
index's folder) into an index, under the import rules (docs/validation.md)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich loads only when a bar is shown
    from rich.progress import Progress


def register(sub, common) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "import",
        help="import distribution files or folders of them (historical files welcome)",
        description="Import wheels and sdists from disk under the import rules: every safety "
        "check, plus what PyPI has ever served (non-normalised names, .zip sdists, older "
        "metadata). Files already present are skipped; exits 1 if any file was refused.",
    )
    common(p)
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    p.add_argument("--jobs", "-j", type=int, help="files verified at once (default: 2 x cores)")
    p.add_argument("--json", action="store_true", help="print a JSON summary on stdout only")
    p.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    p.add_argument(
        "--init", action="store_true", help="create the database if it does not exist yet"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from pallet.cli.common import existing_index
    from pallet.core.rules import IMPORT
    from pallet.storage import open_store
    from pallet.upload.imports import find_files, import_files

    settings, engine = existing_index(args, init=args.init)
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        paths = find_files(args.paths)
    except FileNotFoundError as exc:
        err.print(f"error: {exc}")
        return 2
    store = open_store(settings.storage_url)
    started = time.monotonic()
    with _progress(err, len(paths), quiet=args.quiet or args.json) as advance:
        outcomes = import_files(
            engine,
            store,
            paths,
            rules=IMPORT,
            tmp_dir=settings.tmp_dir,
            max_file_size=settings.max_file_size,
            quota=settings.project_quota,
            jobs=args.jobs,
            on_done=advance,
        )
    engine.dispose()
    seconds = time.monotonic() - started
    counts = Counter(o.status for o in outcomes)
    if args.json:
        summary: dict[str, object] = {k: counts[k] for k in ("imported", "present", "refused")}
        summary |= {"seconds": round(seconds, 3), "files": [o.as_json() for o in outcomes]}
        json.dump(summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        _print_summary(Console(highlight=False), outcomes, counts, seconds)
    return 1 if counts["refused"] else 0


class _progress:  # noqa: N801 - a context manager that yields the per-file callback
    """A bar on a terminal; nothing elsewhere (the summary says it all)."""

    def __init__(self, console, total: int, *, quiet: bool) -> None:  # noqa: ANN001
        self.console, self.total, self.quiet = console, total, quiet
        self.bar: Progress | None = None

    def __enter__(self):  # noqa: ANN204
        if self.quiet or not self.console.is_terminal:
            return lambda outcome: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

        self.bar = bar = Progress(
            "importing", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=self.console, transient=True,
        )
        bar.start()
        task = bar.add_task("import", total=self.total)
        return lambda outcome: bar.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()


def _print_summary(console, outcomes, counts, seconds: float) -> None:  # noqa: ANN001
    from rich.table import Table

    refused = [o for o in outcomes if o.status == "refused"]
    if refused:
        table = Table("refused file", "reason", title="Refused", title_justify="left")
        for o in refused:
            table.add_row(o.filename, o.reason or "")
        console.print(table)
    summary = Table("imported", "already present", "refused", "files/s")
    rate = len(outcomes) / seconds if seconds else 0.0
    summary.add_row(
        str(counts["imported"]), str(counts["present"]), str(counts["refused"]), f"{rate:.0f}"
    )
    console.print(summary)
