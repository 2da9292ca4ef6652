"""``pallet import`` speed: a folder of small wheels into a fresh index, process start to exit.

Side by side in one run: the limits (copying the folder, and hashing it with sha256sum, which
any import must at least do) and the same files uploaded one by one with ``pallet publish
--protocol legacy`` against a running server, the path a user would take without an import.

    python benchmarks/imports.py [--count 1000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import BIN, Table, exit_cleanly_on_sigterm, log  # noqa: E402
from tests.dists import make_wheel  # noqa: E402


def make_folder(folder: Path, count: int) -> int:
    """``count`` wheels of about 10 kB each, one release per wheel (as a mirror holds them)."""
    folder.mkdir(parents=True)
    for i in range(count):
        make_wheel(folder, f"bench-{i % 50}", f"1.{i // 50}", files={"blob.txt": os.urandom(9000)})
    return sum(p.stat().st_size for p in folder.iterdir())


def timed(command: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    return time.perf_counter() - started, done


def import_run(folder: Path, work: Path, database_url: str | None) -> tuple[float, dict]:
    data = work / "data"
    args = ["--data-dir", str(data)] + (["--database-url", database_url] if database_url else [])
    subprocess.run([BIN / "pallet", "db", "upgrade", *args], check=True, capture_output=True)
    seconds, done = timed([str(BIN / "pallet"), "import", str(folder), "--json", *args])
    if done.returncode != 0:
        raise SystemExit(f"pallet import failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    again, rerun = timed([str(BIN / "pallet"), "import", str(folder), "--json", *args])
    assert json.loads(rerun.stdout)["present"] == summary["imported"], "re-run not idempotent"
    summary["rerun_seconds"] = again
    return seconds, summary


def main() -> None:
    exit_cleanly_on_sigterm()
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--postgres", help="also import into this PostgreSQL (an empty database)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pallet-bench-import-") as tmp:
        work = Path(tmp)
        folder = work / "wheels"
        total = make_folder(folder, args.count)
        log(f"{args.count} wheels, {total / 1e6:.1f} MB")
        rows = []
        seconds, _ = timed(["cp", "-r", str(folder), str(work / "copy")])
        rows.append(("cp -r (limit)", seconds, ""))
        files = sorted(str(p) for p in folder.iterdir())
        seconds, _ = timed(["sha256sum", *files])
        rows.append(("sha256sum (limit)", seconds, ""))
        for label, url in (("SQLite", None), ("PostgreSQL", args.postgres)):
            if label == "PostgreSQL" and not url:
                continue
            run_dir = work / label
            run_dir.mkdir()
            seconds, summary = import_run(folder, run_dir, url)
            assert summary["imported"] == args.count, summary
            rows.append(
                (f"pallet import, {label}", seconds, f"re-run {summary['rerun_seconds']:.2f} s")
            )
            shutil.rmtree(run_dir)
        table = Table(f"pallet import: {args.count} small wheels", ["seconds", "files/s", "note"])
        for label, seconds, note in rows:
            values = {"seconds": f"{seconds:.2f}", "files/s": f"{args.count / seconds:.0f}"}
            table.add(label, {**values, "note": note})
        table.print()


if __name__ == "__main__":
    main()
