"""The parent process of ``pallet serve --workers N``: it forks N workers over one listening
socket and keeps N of them running until it is told to stop.

Why not uvicorn's own supervisor: it starts each worker with ``multiprocessing``'s *spawn*, so
the parent must import uvicorn (and with it click, watchfiles, multiprocessing: about 26 MB
resident) and a resource-tracker process runs beside it (12 MB more), for a job that needs a
few system calls. This parent imports only the standard library and Pallet's settings; each
worker, forked from it, imports the web stack, the database layer and the app itself. What the
parent had imported, the worker shares rather than loads again.

Behaviour kept from uvicorn's supervisor:

- SIGINT or SIGTERM: every worker gets SIGTERM (uvicorn's graceful shutdown) and the parent
  waits for all of them; a second signal kills them (SIGKILL).
- A worker that dies is replaced, unless it never started (exit code ``STARTUP_FAILURE``: the
  app, the database or the lifespan is broken and would fail the same way again); then the
  whole server stops, with exit code 1.
- SIGHUP replaces the workers one by one, each only once its successor serves.

And one it lacked: a worker notices when the parent is gone (even SIGKILLed) and shuts down,
instead of serving on as an orphan nobody will stop.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger("pallet")

#: A worker's exit code when it stopped before it ever served (uvicorn's value for the same).
STARTUP_FAILURE = 3
#: How long a SIGHUP waits for a replacement worker to serve before it keeps the old one.
RESTART_TIMEOUT = 120.0

#: Runs in a worker: serve on the socket, call ``ready()`` once serving, return the exit code.
Serve = Callable[[socket.socket, Callable[[], None]], int]

_HANDLED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket every worker accepts on (bound here, listened on by the workers).
    Exits with one line if the address cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SystemExit(f"error: cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


@dataclass
class _Worker:
    pid: int
    ready_fd: int  # the worker writes one byte there once it serves
    ready: bool = False
    retiring: bool = False  # told to stop by us: not replaced when it exits


class Supervisor:
    def __init__(self, sock: socket.socket, count: int, serve: Serve) -> None:
        self.sock, self.count, self.serve = sock, count, serve
        self.workers: dict[int, _Worker] = {}
        self._signals: list[int] = []
        self._stopping = False
        self._failed = False

    # -- the parent ----------------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers and look after them until SIGINT/SIGTERM; the exit code."""
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        # Never written: its end-of-file tells every worker that this process is gone.
        self._lifeline_r, self._lifeline_w = os.pipe()
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _HANDLED}
        old_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            for _ in range(self.count):
                self._start_worker()
            while not self._stopping:
                self._wait(1.0)
                self._handle_signals()
            self._stop_all()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (self._wake_r, self._wake_w, self._lifeline_r, self._lifeline_w):
                os.close(fd)
        return 1 if self._failed else 0

    def _on_signal(self, sig: int, _frame: object) -> None:
        if sig != signal.SIGCHLD:
            self._signals.append(sig)

    def _wait(self, timeout: float) -> None:
        """Sleep until a signal, a worker's readiness or ``timeout``; then note who is ready
        and who has exited."""
        fds = [self._wake_r, *(w.ready_fd for w in self.workers.values() if not w.ready)]
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for old kernels
            readable = []
        if self._wake_r in readable:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        for worker in list(self.workers.values()):
            if worker.ready_fd in readable and os.read(worker.ready_fd, 1):
                worker.ready = True
        self._reap()

    def _handle_signals(self) -> None:
        while self._signals:
            sig = self._signals.pop(0)
            if sig in (signal.SIGINT, signal.SIGTERM):
                self._stopping = True
            elif sig == signal.SIGHUP and not self._stopping:
                self._restart_all()

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            os.close(worker.ready_fd)
            if self._stopping or worker.retiring:
                continue
            code = os.waitstatus_to_exitcode(status)
            if code == STARTUP_FAILURE and not worker.ready:
                log.error("worker %d failed to start; stopping the server", pid)
                self._failed = self._stopping = True
                continue
            how = f"with exit code {code}" if code >= 0 else f"by signal {-code}"
            log.warning("worker %d died %s; starting another", pid, how)
            self._start_worker()

    def _restart_all(self) -> None:
        """Replace each worker in turn, retiring it only once its successor serves."""
        for old in list(self.workers.values()):
            if old.retiring or old.pid not in self.workers:
                continue
            new = self._start_worker()
            deadline = time.monotonic() + RESTART_TIMEOUT
            while not new.ready and new.pid in self.workers and time.monotonic() < deadline:
                self._wait(0.5)
                if any(s in (signal.SIGINT, signal.SIGTERM) for s in self._signals):
                    return
            if not new.ready:
                log.error("worker %d did not start serving; keeping worker %d", new.pid, old.pid)
                if new.pid in self.workers:
                    new.retiring = True
                    os.kill(new.pid, signal.SIGKILL)
                return
            old.retiring = True
            os.kill(old.pid, signal.SIGTERM)

    def _stop_all(self) -> None:
        """SIGTERM to every worker, then wait for them; a further SIGINT/SIGTERM kills them."""
        self._signals.clear()
        sig = signal.SIGTERM
        for worker in self.workers.values():
            os.kill(worker.pid, sig)
        while self.workers:
            self._wait(1.0)
            if self._signals and sig != signal.SIGKILL:
                sig = signal.SIGKILL
                for worker in self.workers.values():
                    os.kill(worker.pid, sig)

    def _start_worker(self) -> _Worker:
        ready_r, ready_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would print what the parent had buffered
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child, which never returns from here
            code = 1
            try:
                os.close(ready_r)
                code = self._worker(ready_w)
            except KeyboardInterrupt:
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - reported, then the worker exits
                traceback.print_exc()
            finally:
                for stream in (sys.stdout, sys.stderr):
                    stream.flush()
                os._exit(code)
        os.close(ready_w)
        worker = self.workers[pid] = _Worker(pid, ready_r)
        return worker

    # -- a worker ------------------------------------------------------------------------------

    def _worker(self, ready_w: int) -> int:
        """In the forked child: drop the parent's signal handling and descriptors, then serve."""
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        for fd in (self._wake_r, self._wake_w, self._lifeline_w):
            os.close(fd)
        for other in self.workers.values():
            os.close(other.ready_fd)
        threading.Thread(
            target=_stop_with_parent, args=(self._lifeline_r,), name="parent-watch", daemon=True
        ).start()

        def ready() -> None:
            try:
                os.write(ready_w, b"r")
            except OSError:  # the parent is gone; the watch thread stops this worker
                pass

        return self.serve(self.sock, ready)


def _stop_with_parent(lifeline: int) -> None:
    """Block until the parent's end of the lifeline closes, which happens only when the parent
    exits, however it exits; then ask this worker to shut down as SIGTERM would."""
    try:
        while os.read(lifeline, 1):
            pass
    except OSError:
        pass
    os.kill(os.getpid(), signal.SIGTERM)
