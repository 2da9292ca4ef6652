"""What the user sees while publishing: rich progress bars on a terminal (one per file plus
the total), one line per file elsewhere (CI logs), and nothing on stdout with ``--json``."""

from __future__ import annotations

import sys
import threading
from typing import IO, Protocol

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)


def human_size(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError


class Reporter(Protocol):
    def start(self, total_bytes: int) -> None: ...
    def file(self, filename: str, size: int) -> FileBar: ...
    def message(self, text: str) -> None: ...
    def stop(self) -> None: ...


class FileBar(Protocol):
    def advance(self, n: int) -> None: ...
    def done(self, summary: str) -> None: ...


class _PlainBar:
    def __init__(self, out: Console, filename: str) -> None:
        self.out, self.filename = out, filename

    def advance(self, n: int) -> None:
        pass

    def done(self, summary: str) -> None:
        self.out.print(f"{self.filename}: {summary}", highlight=False, soft_wrap=True)


class PlainReporter:
    """One line per file when it is done, for logs that are not terminals."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.out = Console(
            file=stream or sys.stdout, no_color=True, highlight=False, soft_wrap=True
        )

    def start(self, total_bytes: int) -> None:
        pass

    def file(self, filename: str, size: int) -> FileBar:
        return _PlainBar(self.out, filename)

    def message(self, text: str) -> None:
        self.out.print(text, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        pass


class _RichBar:
    def __init__(self, owner: RichReporter, filename: str, size: int) -> None:
        self.owner = owner
        self.task: TaskID = owner.progress.add_task(filename, total=size)

    def advance(self, n: int) -> None:
        self.owner.progress.advance(self.task, n)
        if self.owner.total is not None:
            self.owner.progress.advance(self.owner.total, n)

    def done(self, summary: str) -> None:
        name = self.owner.progress.tasks[self.task].description
        self.owner.progress.update(self.task, description=f"{name} [dim]{summary}")


class RichReporter:
    """A bar per file (bytes, speed, ETA) and one for the whole run."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
        self.progress = Progress(
            TextColumn("{task.description}", markup=True),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            refresh_per_second=8,
        )
        self.total: TaskID | None = None
        self._lock = threading.Lock()

    def start(self, total_bytes: int) -> None:
        self.progress.start()
        self.total = self.progress.add_task("[bold]total", total=total_bytes)

    def file(self, filename: str, size: int) -> FileBar:
        with self._lock:
            return _RichBar(self, filename, size)

    def message(self, text: str) -> None:
        self.progress.console.print(text, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        self.progress.stop()


def reporter_for(stream: IO[str], *, quiet: bool = False) -> Reporter:
    if not quiet and stream.isatty():
        return RichReporter(Console(file=stream))
    return PlainReporter(stream)
