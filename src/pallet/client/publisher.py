"""``pallet publish`` as a library: one publishing session per release, files in parallel,
then publish (or stop at the stage); the legacy form where the index has no Upload 2.0.

>>> from pallet.client import publish
>>> results = publish(["dist/*"], url="https://pallet.example/", token="...")
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from packaging.utils import canonicalize_name

from pallet.client import legacy, transfers
from pallet.client.discovery import Endpoints, discover, speaks_upload2
from pallet.client.dists import Dist
from pallet.client.progress import PlainReporter, Reporter, human_size
from pallet.client.results import FileResult, Interrupted, ReleaseResult, permanent
from pallet.client.sessions import FileUpload, Keepalive, PublishingSession
from pallet.client.transport import Api, ClientError, Transport

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass
class Options:
    protocol: str = "auto"  # "auto" (Upload 2.0, else legacy), "2.0" or "legacy"
    mechanism: str | None = None  # force one; else the best both sides support
    multipart_threshold: int = 100 * 2**20  # where S3 advises multipart
    jobs: int = 3  # files in parallel
    part_jobs: int = 4  # multipart parts in parallel, per file
    stage: bool = False  # stop before publishing
    resume: bool = False  # re-attach to the open session of a release
    skip_existing: bool = False
    session_url: str | None = None  # finish this session instead of opening one
    timeout: float = 3600.0  # longest wait for one processing step
    limit_rate: int = 0  # bytes per second over all transfers; 0 = unlimited


class Publisher:
    def __init__(
        self,
        transport: Transport,
        url: str,
        options: Options | None = None,
        reporter: Reporter | None = None,
    ) -> None:
        self.transport = transport
        self.api = Api(transport)
        self.url = url
        self.options = options or Options()
        self.reporter = reporter or PlainReporter()
        self.cancel = threading.Event()
        rate = self.options.limit_rate
        self.limit = transfers.RateLimit(rate) if rate > 0 else None
        self._endpoints: Endpoints | None = None
        self._live: list[FileUpload] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max(1, self.options.jobs))

    @property
    def endpoints(self) -> Endpoints:
        if self._endpoints is None:
            if self.options.session_url:
                self._endpoints = Endpoints(self.url, None, True)
            else:
                self._endpoints = discover(self.transport, self.url, self.options.protocol)
        return self._endpoints

    def publish(self, releases: dict[tuple[str, str], list[Dist]]) -> list[ReleaseResult]:
        """Every release is tried, whatever happened to the ones before it. Releases of
        different projects go in parallel (``jobs`` files in flight in all): many one-file
        releases would otherwise wait on each other's round trips. Releases of one project go
        in order, as given: a first release reserves the project's name until it is published.
        Results come back in the order given."""
        self.reporter.start(sum(d.size for files in releases.values() for d in files))
        results = {key: self._result_for(files) for key, files in releases.items()}
        lanes: dict[str, list[tuple[str, str]]] = {}
        for key in releases:
            lanes.setdefault(canonicalize_name(key[0]), []).append(key)

        def lane(keys: list[tuple[str, str]]) -> None:
            for key in keys:
                self._one_release(releases[key], results[key])

        try:
            self._in_parallel(
                [functools.partial(lane, keys) for keys in lanes.values()], "pallet-release"
            )
        except KeyboardInterrupt:
            raise Interrupted(None) from None
        finally:
            self.reporter.stop()
        return list(results.values())

    @staticmethod
    def _result_for(files: list[Dist]) -> ReleaseResult:
        result = ReleaseResult(files[0].name, files[0].version)
        result.files = [FileResult(d.filename, d.size) for d in files]
        return result

    def _one_release(self, files: list[Dist], result: ReleaseResult) -> None:
        if self.cancel.is_set():
            result.status = "canceled"
            return
        try:
            self._release(files, result)
        except ClientError as exc:
            result.status, result.error = "failed", str(exc)
            if result.session:
                result.notices.append(f"the session stays open: {result.session}")

    # --- one release --------------------------------------------------------------------

    def _release(self, dists: list[Dist], result: ReleaseResult) -> ReleaseResult:
        if self.endpoints.upload2:
            try:
                return self._upload2(dists, result)
            except ClientError as exc:
                if result.session or speaks_upload2(exc) or not self.endpoints.legacy:
                    raise
                self.reporter.message(
                    f"{self.endpoints.upload2} does not speak Upload 2.0 "
                    f"({exc.status}); using the legacy upload API"
                )
                self._endpoints = Endpoints(None, self.endpoints.legacy)
        if self.options.stage or self.options.session_url:
            raise ClientError(
                "staging needs an index with Upload 2.0; this one has only legacy uploads"
            )
        return self._legacy(dists, result)

    def _open(self, first: Dist) -> PublishingSession:
        if self.options.session_url:
            return PublishingSession.attach(self.api, self.options.session_url)
        assert self.endpoints.upload2
        return PublishingSession.open(
            self.api, self.endpoints.upload2, first.name, first.version, resume=self.options.resume
        )

    def _upload2(self, dists: list[Dist], result: ReleaseResult) -> ReleaseResult:
        session = self._open(dists[0])
        result.session, result.stage = session.url, session.stage
        verb = "re-attached to" if session.files or self.options.session_url else "opened"
        self.reporter.message(
            f"{verb} publishing session for {result.name} {result.version}: {session.url}"
        )
        staged = self._staged_hashes(session, dists[0]) if session.files else {}
        with Keepalive(lambda: [session, *self._live]):
            try:
                self._run_files(
                    [
                        (d, r, functools.partial(self._file2, session, d, r, staged))
                        for d, r in zip(dists, result.files, strict=True)
                    ]
                )
            except KeyboardInterrupt:
                raise Interrupted(session) from None
        failed = [f for f in result.files if f.status == "failed"]
        if failed:
            result.status = "failed"
            result.error = f"{len(failed)} file(s) failed"
            if not (self.options.resume or self.options.session_url) and not any(
                f.retryable for f in failed
            ):
                session.cancel()
                result.status = "canceled"
                result.notices.append("the session was canceled: fix the files and publish again")
            else:
                result.notices.append(
                    f"the session stays open: finish it with --resume ({session.url})"
                )
            return result
        if self.cancel.is_set():  # Ctrl-C while the files were going: publish nothing
            raise Interrupted(session)
        if self.options.stage:
            session.refresh()
            result.status = "staged"
            return result
        try:
            session.publish(self.options.timeout)
        except ClientError as exc:
            result.status, result.error = "failed", str(exc)
            result.notices = session.notices
            return result
        result.status = "published"
        result.notices = session.notices
        return result

    def _staged_hashes(self, session: PublishingSession, dist: Dist) -> dict[str, str]:
        """sha256 of the files already in a session, from its stage index (PEP 691 JSON), so a
        resumed run keeps only files whose bytes are the ones on disk."""
        if not session.stage:
            return {}
        try:
            response = self.transport.request(
                "GET",
                f"{session.stage}{canonicalize_name(dist.name)}/",
                idempotent=True,
                headers={"Accept": SIMPLE_JSON},
                authenticate=False,
            )
            files = response.json()["files"]
            return {f["filename"]: f["hashes"]["sha256"] for f in files}
        except (ClientError, ValueError, TypeError, KeyError):
            return {}  # no usable stage: completed files are then trusted by name

    def _file2(
        self, session: PublishingSession, dist: Dist, result: FileResult, staged: dict[str, str]
    ) -> None:
        fs = self._existing(session, dist, staged)
        if fs is not None and fs.status == "completed":
            result.status, result.mechanism = "already-staged", fs.mechanism.get("identifier")
            result.sha256 = dist.hashes["sha256"]
            return
        resume = fs is not None  # pending: pick the transfer up where it stopped
        if fs is None:
            mechanism = transfers.choose(
                session.body.get("mechanisms") or [],
                dist,
                forced=self.options.mechanism,
                multipart_threshold=self.options.multipart_threshold,
            )
            dist.hash_file(transfers.hash_names(mechanism))
            try:
                fs = session.new_file(
                    dist.filename, dist.size, transfers.declared_hashes(mechanism, dist), mechanism
                )
            except ClientError as exc:
                if self.options.skip_existing and exc.slug == "file-exists":
                    result.status = "exists"
                    return
                raise
        result.sha256 = dist.hashes.get("sha256")
        result.mechanism = fs.mechanism.get("identifier")
        with self._lock:
            self._live.append(fs)
        try:
            self._transfer(
                dist,
                result,
                lambda meter: transfers.send(
                    self.transport, fs, dist, meter, part_jobs=self.options.part_jobs, resume=resume
                ),
            )
            fs.complete(self.options.timeout)
        except BaseException as exc:
            if permanent(exc):
                try:
                    fs.delete()  # PEP 694: a failed file session is deleted, not repaired
                except ClientError:
                    pass
            raise
        finally:
            with self._lock:
                self._live.remove(fs)
        result.status = "uploaded"

    def _existing(
        self, session: PublishingSession, dist: Dist, staged: dict[str, str]
    ) -> FileUpload | None:
        """The session's file upload for this filename if it can be kept (completed with the
        same bytes, or pending); anything else is deleted so the file starts over."""
        fs = session.file(dist.filename)
        if fs is None:
            return None
        dist.hash_file(("sha256",))
        fs.wait_while(("processing",), self.options.timeout)
        same = staged.get(dist.filename, dist.hashes["sha256"]) == dist.hashes["sha256"]
        if (fs.status == "completed" and same) or fs.status == "pending":
            return fs
        self.reporter.message(f"{dist.filename}: replacing the {fs.status} upload in the session")
        fs.delete()
        return None

    # --- legacy ---------------------------------------------------------------------------

    def _legacy(self, dists: list[Dist], result: ReleaseResult) -> ReleaseResult:
        url = self.endpoints.legacy
        assert url
        result.protocol, result.session = "legacy", None

        def one(dist: Dist, fr: FileResult) -> None:
            dist.hash_file(("sha256", "blake2_256"))  # what uv and twine send
            fr.sha256, fr.mechanism = dist.hashes["sha256"], "legacy"
            try:
                self._transfer(
                    dist, fr, lambda meter: legacy.upload(self.transport, url, dist, meter)
                )
            except ClientError as exc:
                if self.options.skip_existing and legacy.already_exists(exc):
                    fr.status = "exists"
                    return
                raise
            fr.status = "uploaded"

        try:
            self._run_files(
                [
                    (d, r, functools.partial(one, d, r))
                    for d, r in zip(dists, result.files, strict=True)
                ]
            )
        except KeyboardInterrupt:
            raise Interrupted(None) from None
        failed = [f for f in result.files if f.status == "failed"]
        result.status = "failed" if failed else "uploaded"
        if failed:
            result.error = f"{len(failed)} file(s) failed"
        return result

    # --- shared ---------------------------------------------------------------------------

    def _transfer(
        self, dist: Dist, result: FileResult, send: Callable[[transfers.Meter], None]
    ) -> None:
        bar = self.reporter.file(dist.filename, dist.size)
        meter = transfers.Meter(bar.advance, self.cancel, self.limit)
        started = time.monotonic()
        try:
            send(meter)
        finally:
            result.bytes_sent = meter.wire_bytes
            result.seconds = round(time.monotonic() - started, 3)
        rate = human_size(dist.size / max(result.seconds, 1e-6)) + "/s"
        bar.done(
            f"sent {human_size(meter.wire_bytes)} in {result.seconds:.1f}s ({rate}, {result.mechanism})"
        )

    def _run_files(self, jobs: list[tuple[Dist, FileResult, Callable[[], None]]]) -> None:
        """Run per-file work, at most ``jobs`` files at once over every release; a file's
        failure is recorded on its result and the others carry on."""

        def guarded(dist: Dist, result: FileResult, work: Callable[[], None]) -> None:
            with self._slots:
                if self.cancel.is_set():
                    result.status = "canceled"
                    return
                try:
                    work()
                except transfers.Canceled:
                    result.status = "canceled"
                except ClientError as exc:
                    result.status, result.error = "failed", str(exc)
                    result.retryable = not permanent(exc)
                    self.reporter.message(f"{dist.filename}: failed: {exc}")

        self._in_parallel([functools.partial(guarded, *job) for job in jobs], "pallet-file")

    def _in_parallel(self, calls: list[Callable[[], None]], name: str) -> None:
        """Run ``calls`` on up to ``jobs`` threads. Ctrl-C (seen by the main thread only)
        stops every transfer at its next chunk, lets the threads wind down, then surfaces as
        ``Interrupted`` with an open session to report, if any."""
        if len(calls) == 1:
            calls[0]()
            return
        pool = ThreadPoolExecutor(
            max_workers=max(1, min(self.options.jobs, len(calls))), thread_name_prefix=name
        )
        futures: list[Future[None]] = [pool.submit(call) for call in calls]
        try:
            pending = set(futures)
            while pending:
                _done, pending = wait(pending, timeout=0.2, return_when=FIRST_EXCEPTION)
            for future in futures:
                future.result()
        except KeyboardInterrupt:
            self.cancel.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for future in futures:  # a release that was cut short names its open session
                if not future.cancelled() and isinstance(future.exception(), Interrupted):
                    raise future.exception() from None  # type: ignore[misc]
            raise
        pool.shutdown(wait=True)
