"""A delaying TCP proxy for the cluster harness: a real network's latency on loopback.

``DelayProxy`` listens on 127.0.0.1 and forwards every connection to one target host:port. Bytes
read from the client reach the target ``up_ms`` later, bytes read from the target reach the
client ``down_ms`` later (0.5 ms each by default: 1 ms added to every round trip). Each direction
is a FIFO released by one timer, so byte order is kept and the delay never accumulates: a stream
of chunks is shifted in time, not spaced out. Flow control is passed through (a full socket on
one side pauses reading on the other).

Timer precision: asyncio's default loop on Linux waits in ``epoll_wait``, whose timeout is whole
milliseconds, rounded up, so a 0.5 ms timer fires after about 1 ms. The proxy's loop therefore
waits in ``select()``, which takes microseconds (and allows fds below 1024 only: plenty for a
proxy in front of one database). ``calibrate()`` measures what was achieved: ping-pong round
trips to an echo server, straight and through a proxy with the same delays on the same loop;
``stats()`` reports how long forwarded chunks were actually held, per direction.

Two ways to run it, both with a bounded lifetime:

- ``DelayProxy(...).start()`` / ``.stop()`` (or ``with``): a thread with its own event loop.
- ``ProxyProcess(...).start()`` / ``.stop()``: the same in a subprocess of its own, so the caller's
  Python work never holds the proxy's timers back (the GIL). The child exits when its stdin
  closes, so it cannot outlive its parent even if the parent is SIGKILLed.

    python tests/cluster/netdelay.py --target 127.0.0.1:5432 [--up-ms 0.5] [--down-ms 0.5]

prints one JSON line (``port``, ``pid``, ``calibration``) once it listens, and on stdin EOF or
SIGTERM a last JSON line (``stats``) before it exits. Standard library only: the harness runs
this file by path.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HOST = "127.0.0.1"
HIGH_WATER = 4 * 2**20  # bytes held in one direction before the source is paused
LOW_WATER = 1 * 2**20
EARLY = 20e-6  # a timer firing this close to a chunk's due time releases it
SAMPLES = 100_000  # hold times kept per direction (the most recent)
_EOF, _CLOSE = object(), object()


class _Holds:
    """How long forwarded chunks were held, in seconds (a bounded window of the latest)."""

    def __init__(self) -> None:
        self.chunks = 0
        self.bytes = 0
        self.samples: collections.deque[float] = collections.deque(maxlen=SAMPLES)

    def add(self, held: float, size: int) -> None:
        self.chunks += 1
        self.bytes += size
        self.samples.append(held)

    def summary(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"chunks": self.chunks, "bytes": self.bytes}
        if self.samples:
            ordered = sorted(self.samples)
            out["hold_ms_p50"] = round(ordered[len(ordered) // 2] * 1e3, 3)
            out["hold_ms_p99"] = round(
                ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)] * 1e3, 3
            )
            out["hold_ms_max"] = round(ordered[-1] * 1e3, 3)
        return out


class _Lead:
    """How late the loop's timers fire (wake-up and dispatch), learnt as they fire; timers are
    set that much early, so a chunk is held its delay, not its delay plus the loop's lag."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def learn(self, late: float, delay: float) -> None:
        late = min(max(late, 0.0), delay / 4)  # a stall (GC, a busy machine) teaches nothing
        self.seconds += 0.05 * (late - self.seconds)


class _Link:
    """One direction of one connection: what ``source`` reads, ``sink`` writes ``delay`` later."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, delay: float, holds: _Holds | None, lead: _Lead
    ) -> None:
        self.loop, self.delay, self.holds, self.lead = loop, delay, holds, lead
        self.queue: collections.deque[tuple[float, float, Any]] = collections.deque()
        self.pending = 0
        self.timer: asyncio.TimerHandle | None = None
        self.source: asyncio.Transport | None = None
        self.sink: asyncio.Transport | None = None
        self.paused_for_queue = False
        self.paused_for_sink = False
        self.done = False
        self.source_eof = False  # the source half-closed (its EOF is queued or delivered)
        self.sink_shut = False  # EOF delivered: the sink's write half is shut
        self.reverse: _Link | None = None

    def push(self, item: Any) -> None:
        if self.done:
            return
        now = self.loop.time()
        self.queue.append((now + self.delay, now, item))
        if isinstance(item, bytes):
            self.pending += len(item)
            if self.pending > HIGH_WATER and not self.paused_for_queue:
                self.paused_for_queue = True
                self._pause_source()
        self._arm()

    def attach_sink(self, sink: asyncio.Transport) -> None:
        self.sink = sink
        self._arm()

    def _arm(self) -> None:
        if self.timer is None and self.queue and self.sink is not None:
            when = self.queue[0][0] - self.lead.seconds
            self.timer = self.loop.call_at(when, self._release, when)

    def _release(self, scheduled: float) -> None:
        self.timer = None
        sink = self.sink
        assert sink is not None
        now = self.loop.time()
        self.lead.learn(now - scheduled, self.delay)
        while self.queue and self.queue[0][0] <= now + self.lead.seconds + EARLY:
            _, born, item = self.queue.popleft()
            if item is _EOF:
                self.sink_shut = True
                if self.reverse is not None and self.reverse.source_eof:
                    sink.close()  # both halves shut: asyncio would keep it open forever
                elif not sink.is_closing() and sink.can_write_eof():
                    sink.write_eof()
            elif item is _CLOSE:
                sink.close()
                self.queue.clear()
                self.done = True
                return
            else:
                self.pending -= len(item)
                if not sink.is_closing():
                    sink.write(item)
                if self.holds is not None:
                    self.holds.add(self.loop.time() - born, len(item))
        if self.paused_for_queue and self.pending < LOW_WATER:
            self.paused_for_queue = False
            self._resume_source()
        self._arm()

    def sink_full(self, full: bool) -> None:
        self.paused_for_sink = full
        if full:
            self._pause_source()
        else:
            self._resume_source()

    def _pause_source(self) -> None:
        if self.source is not None and not self.source.is_closing():
            self.source.pause_reading()

    def _resume_source(self) -> None:
        if self.paused_for_queue or self.paused_for_sink:
            return
        if self.source is not None and not self.source.is_closing():
            self.source.resume_reading()

    def cancel(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


def _nodelay(transport: asyncio.BaseTransport) -> None:
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TargetSide(asyncio.Protocol):
    def __init__(self, up: _Link, down: _Link) -> None:
        self.up, self.down = up, down

    def data_received(self, data: bytes) -> None:
        self.down.push(data)

    def eof_received(self) -> bool:
        self.down.source_eof = True
        self.down.push(_EOF)
        return not self.up.sink_shut  # keep the write half open unless it is shut already

    def connection_lost(self, exc: Exception | None) -> None:
        self.down.push(_CLOSE)

    def pause_writing(self) -> None:
        self.up.sink_full(True)

    def resume_writing(self) -> None:
        self.up.sink_full(False)


class _ClientSide(asyncio.Protocol):
    """An accepted connection: opens its own connection to the target, then relays both ways."""

    def __init__(self, proxy: DelayProxy, target: tuple[str, int], holds: bool) -> None:
        self.proxy, self.target = proxy, target
        loop = asyncio.get_running_loop()
        self.up = _Link(loop, proxy.up_delay, proxy.holds_up if holds else None, proxy.lead)
        self.down = _Link(loop, proxy.down_delay, proxy.holds_down if holds else None, proxy.lead)
        self.up.reverse, self.down.reverse = self.down, self.up
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        _nodelay(transport)
        self.proxy.transports.add(transport)
        self.up.source = transport
        self.down.attach_sink(transport)
        transport.pause_reading()  # until the target answers
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        try:
            upstream, _ = await loop.create_connection(
                lambda: _TargetSide(self.up, self.down), *self.target
            )
        except OSError:
            self.transport.close()
            return
        _nodelay(upstream)
        self.upstream = upstream
        self.proxy.transports.add(upstream)
        self.down.source = upstream
        self.up.attach_sink(upstream)
        if not self.transport.is_closing():
            self.transport.resume_reading()

    def data_received(self, data: bytes) -> None:
        self.up.push(data)

    def eof_received(self) -> bool:
        self.up.source_eof = True
        self.up.push(_EOF)
        return not self.down.sink_shut  # keep the write half open unless it is shut already

    def connection_lost(self, exc: Exception | None) -> None:
        assert self.transport is not None
        self.proxy.transports.discard(self.transport)
        self.up.push(_CLOSE)
        self.down.cancel()
        if self.upstream is not None:
            self.proxy.transports.discard(self.upstream)


class _Echo(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        _nodelay(transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)


def _fine_timers() -> None:
    """Linux lets a sleeping thread wake up to 50 us late (its timer slack) to batch wake-ups;
    the proxy's thread asks for 1 ns, so a 0.5 ms hold is 0.5 ms."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(29, 1, 0, 0, 0)  # PR_SET_TIMERSLACK
    except (OSError, AttributeError):
        pass


def _ping_pong(port: int, rounds: int, size: int = 64) -> list[float]:
    """Round-trip times (s) of ``rounds`` messages of ``size`` bytes on one connection."""
    message = b"x" * size
    times = []
    with socket.create_connection((HOST, port), timeout=10) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(rounds + 10):
            started = time.perf_counter()
            sock.sendall(message)
            got = 0
            while got < size:
                chunk = sock.recv(size - got)
                if not chunk:
                    raise ConnectionError("echo connection closed")
                got += len(chunk)
            if i >= 10:  # the first rounds warm the path up
                times.append(time.perf_counter() - started)
    return times


def _pct(values: list[float], pct: int) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, len(ordered) * pct // 100)]


class DelayProxy:
    """The proxy on an event loop of its own, in a thread; ``start()`` returns once it listens."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        up_ms: float = 0.5,
        down_ms: float = 0.5,
        listen_port: int = 0,
    ) -> None:
        self.target = (target_host, target_port)
        self.up_delay, self.down_delay = up_ms / 1e3, down_ms / 1e3
        self.listen_port = listen_port
        self.port = 0
        self.holds_up, self.holds_down = _Holds(), _Holds()
        self.lead = _Lead()
        self.transports: set[asyncio.Transport] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    # --- lifetime ---------------------------------------------------------------------------

    def start(self, timeout: float = 10) -> DelayProxy:
        self._thread = threading.Thread(target=self._run, name="netdelay", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError("the delay proxy did not start")
        if self._error is not None:
            raise RuntimeError(f"the delay proxy did not start: {self._error}")
        return self

    def stop(self, timeout: float = 10) -> None:
        """Close the listener and every relayed connection, end the loop and join the thread."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError("the delay proxy's thread did not end")

    def __enter__(self) -> DelayProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        _fine_timers()
        # select(): microsecond timeouts (epoll's are whole milliseconds, rounded up).
        loop = asyncio.SelectorEventLoop(selectors.SelectSelector())
        self._loop = loop
        asyncio.set_event_loop(loop)
        try:
            server = loop.run_until_complete(
                loop.create_server(
                    lambda: _ClientSide(self, self.target, holds=True),
                    HOST,
                    self.listen_port,
                    reuse_address=True,
                )
            )
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            server.close()
            for transport in list(self.transports):
                transport.abort()
            loop.run_until_complete(server.wait_closed())
            loop.run_until_complete(asyncio.sleep(0))
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def _call(self, coro: Any, timeout: float = 10) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    # --- measuring ----------------------------------------------------------------------------

    def calibrate(self, rounds: int = 300) -> dict[str, float]:
        """The round trip this proxy adds, measured: ping-pong to an echo server straight and
        through a second listener with the same delays on the same loop (its chunks are not
        counted in ``stats()``). Times in ms; ``added_rtt_ms_p50`` is the figure to quote."""

        async def listen() -> tuple[asyncio.Server, asyncio.Server]:
            loop = asyncio.get_running_loop()
            echo = await loop.create_server(_Echo, HOST, 0)
            echo_port = echo.sockets[0].getsockname()[1]
            probe = await loop.create_server(
                lambda: _ClientSide(self, (HOST, echo_port), holds=False), HOST, 0
            )
            return echo, probe

        async def close(*servers: asyncio.Server) -> None:
            for server in servers:
                server.close()
            # Python 3.11's wait_closed() returns at once; the connections closed by the clients.

        echo, probe = self._call(listen())
        try:
            direct = _ping_pong(echo.sockets[0].getsockname()[1], rounds)
            proxied = _ping_pong(probe.sockets[0].getsockname()[1], rounds)
        finally:
            self._call(close(echo, probe))
        ms = 1e3
        return {
            "configured_rtt_ms": round((self.up_delay + self.down_delay) * ms, 3),
            "direct_rtt_ms_p50": round(statistics.median(direct) * ms, 3),
            "proxied_rtt_ms_p50": round(statistics.median(proxied) * ms, 3),
            "proxied_rtt_ms_p90": round(_pct(proxied, 90) * ms, 3),
            "proxied_rtt_ms_p99": round(_pct(proxied, 99) * ms, 3),
            "added_rtt_ms_p50": round(
                (statistics.median(proxied) - statistics.median(direct)) * ms, 3
            ),
            "added_rtt_ms_p90": round((_pct(proxied, 90) - _pct(direct, 90)) * ms, 3),
            "rounds": rounds,
        }

    def stats(self) -> dict[str, Any]:
        """Chunks and bytes forwarded, and how long they were held, per direction (ms)."""

        async def read() -> dict[str, Any]:
            return {
                "up": self.holds_up.summary(),
                "down": self.holds_down.summary(),
                "open_connections": len(self.transports),
                "timer_lead_us": round(self.lead.seconds * 1e6, 1),
                "cpu_seconds": round(time.process_time(), 3),  # the whole process's
            }

        return self._call(read())


# --- in a subprocess ------------------------------------------------------------------------


class ProxyProcess:
    """``DelayProxy`` in a child process (this file run by path), stopped by ``stop()``.

    ``start()`` returns once the child listens and has calibrated itself: ``port`` and
    ``calibration`` are then set. ``stop()`` closes the child's stdin (it prints its ``stats``
    and exits), then SIGTERMs and SIGKILLs its pid if it has not exited in time."""

    def __init__(
        self,
        target_host: str,
        target_port: int,
        *,
        up_ms: float = 0.5,
        down_ms: float = 0.5,
        calibrate_rounds: int = 300,
        log_path: Path | None = None,
    ) -> None:
        self.args = [
            "--target",
            f"{target_host}:{target_port}",
            "--up-ms",
            str(up_ms),
            "--down-ms",
            str(down_ms),
            "--calibrate",
            str(calibrate_rounds),
        ]
        self.log_path = log_path
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.calibration: dict[str, float] = {}
        self.final_stats: dict[str, Any] = {}

    def start(self, timeout: float = 30) -> ProxyProcess:
        stderr = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        try:
            self.process = subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), *self.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                start_new_session=True,  # a Ctrl-C reaches the caller, who stops us
            )
        finally:
            if self.log_path:
                stderr.close()  # type: ignore[union-attr]
        try:
            first = self._read_line(timeout)
        except BaseException:
            self.stop()
            raise
        self.port = int(first["port"])
        self.calibration = first.get("calibration", {})
        return self

    def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(timeout):
                raise RuntimeError(f"the delay proxy did not start within {timeout:.0f}s")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the delay proxy exited early ({self.process.poll()})")
        return json.loads(line)

    def cpu_seconds(self) -> float:
        """CPU time the child has used so far (Linux; 0.0 elsewhere or once it is gone): a
        proxy in Python takes CPU from the server on a small machine, which a real network
        would not, so a measurement should say how much."""
        if self.process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self, timeout: float = 10) -> dict[str, Any]:
        """Stop the child (by its pid) and return its last ``stats`` (empty if it gave none)."""
        process = self.process
        if process is None:
            return self.final_stats
        if process.poll() is None:
            try:
                out, _ = process.communicate(timeout=timeout)  # closes stdin: the child ends
                for line in reversed(out.splitlines()):
                    if line.startswith("{"):
                        self.final_stats = json.loads(line).get("stats", {})
                        break
            except (subprocess.TimeoutExpired, ValueError, OSError):
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if process.poll() is not None:
                break
            try:
                os.kill(process.pid, sig)
                process.wait(timeout=timeout)
            except ProcessLookupError:
                break
            except subprocess.TimeoutExpired:
                continue
        for stream in (process.stdin, process.stdout):
            if stream is not None and not stream.closed:
                stream.close()
        self.process = None
        return self.final_stats

    def __enter__(self) -> ProxyProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--listen-port", type=int, default=0, help="on 127.0.0.1 (0: any free)")
    parser.add_argument("--up-ms", type=float, default=0.5, help="client → target delay (ms)")
    parser.add_argument("--down-ms", type=float, default=0.5, help="target → client delay (ms)")
    parser.add_argument(
        "--calibrate", type=int, default=300, help="ping-pong rounds measured at start (0: none)"
    )
    args = parser.parse_args()
    host, _, port = args.target.rpartition(":")
    proxy = DelayProxy(
        host, int(port), up_ms=args.up_ms, down_ms=args.down_ms, listen_port=args.listen_port
    )
    proxy.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        calibration = proxy.calibrate(args.calibrate) if args.calibrate else {}
        print(json.dumps({"port": proxy.port, "pid": os.getpid(), "calibration": calibration}))
        sys.stdout.flush()
        # The lifeline: stdin closes when the parent stops us, or dies.
        threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
        while not stop.wait(0.5):
            pass
        print(json.dumps({"stats": proxy.stats()}))
        sys.stdout.flush()
    finally:
        proxy.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
