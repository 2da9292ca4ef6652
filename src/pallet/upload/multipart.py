"""Stream a ``multipart/form-data`` upload: text fields into memory (bounded), the one file part
straight into a ``HashingSpool``. Nothing is buffered whole, and hostile bodies (no boundary,
oversized fields, many files, truncated streams) end in a 4xx problem, never a 500.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from pallet.core.problems import Problem, bad_request
from pallet.upload.spool import DEFAULT_ALGORITHMS, HashingSpool, SpooledFile, too_large

if TYPE_CHECKING:
    from python_multipart.multipart import MultipartCallbacks  # defined for type checkers only

MAX_FIELDS_BYTES = 16 * 2**20  # all text fields together (long descriptions, attestations)
MAX_PARTS = 1000
FILE_FIELD = "content"

#: Called when the file part starts, with the fields seen so far and the part's filename; may
#: raise a Problem to refuse the upload before any file byte is read (auth, filename checks).
OnFileStart = Callable[[dict[str, list[str]], str], Awaitable[None]]


@dataclass
class ReceivedForm:
    fields: dict[str, list[str]] = field(default_factory=dict)
    file: SpooledFile | None = None


def _malformed(detail: str) -> Problem:
    return bad_request("invalid-form", "Malformed multipart form", detail)


async def read_upload_form(
    request: Request, spool_dir: Path, max_file_size: int, on_file_start: OnFileStart
) -> ReceivedForm:
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or not params.get(b"boundary"):
        raise Problem(
            415,
            "unsupported-media-type",
            "Expected multipart/form-data",
            "Uploads are a multipart/form-data POST with the file in the 'content' part.",
        )
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_file_size + MAX_FIELDS_BYTES:
        raise too_large(max_file_size)

    reader = _FormReader(spool_dir, max_file_size, on_file_start)
    parser = MultipartParser(params[b"boundary"], reader.callbacks(), max_header_count=16)
    try:
        async for chunk in request.stream():
            try:
                parser.write(chunk)
            except MultipartParseError as exc:
                raise _malformed(str(exc)) from None
            await reader.apply_events()
        parser.finalize()
        await reader.apply_events()
        if not reader.ended:
            raise _malformed("The request body ended before the closing multipart boundary.")
        return await reader.result()
    except BaseException:
        await reader.abort()
        raise


# What the parser's callbacks queue for ``apply_events``: a part's headers, data, its end.
_Event = (
    tuple[Literal["headers"], dict[bytes, bytes]]
    | tuple[Literal["data"], bytes | memoryview]
    | tuple[Literal["end"], None]
)


def _stable(data: bytes | bytearray, start: int, end: int) -> bytes | memoryview:
    """A view when ``data`` is the request's immutable chunk (no copy of file bytes); a copy
    when the parser hands over its own reusable look-behind buffer."""
    if isinstance(data, bytes):
        return memoryview(data)[start:end]
    return bytes(data[start:end])


class _FormReader:
    """Parser callbacks (sync) queue events; ``apply_events`` (async) feeds fields and the spool."""

    def __init__(self, spool_dir: Path, max_file_size: int, on_file_start: OnFileStart) -> None:
        self.spool_dir = spool_dir
        self.max_file_size = max_file_size
        self.on_file_start = on_file_start
        self.form = ReceivedForm()
        self.spool: HashingSpool | None = None
        self.events: list[_Event] = []
        self.headers: dict[bytes, bytes] = {}
        self._header_name = bytearray()
        self._header_value = bytearray()
        self.parts = 0
        self.field_bytes = 0
        self.ended = False
        self.part_name = ""
        self.part_is_file = False
        self.buffer = bytearray()

    def callbacks(self) -> MultipartCallbacks:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self._header_name.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self._header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": lambda: self.events.append(("headers", dict(self.headers))),
            "on_part_data": lambda d, s, e: self.events.append(("data", _stable(d, s, e))),
            "on_part_end": lambda: self.events.append(("end", None)),
            "on_end": self._end,
        }

    def _begin(self) -> None:
        self.parts += 1
        self.headers = {}
        if self.parts > MAX_PARTS:
            raise MultipartParseError(f"more than {MAX_PARTS} parts")

    def _header_end(self) -> None:
        self.headers[bytes(self._header_name).lower()] = bytes(self._header_value)
        self._header_name.clear()
        self._header_value.clear()

    def _end(self) -> None:
        self.ended = True

    async def apply_events(self) -> None:
        events, self.events = self.events, []
        for event in events:
            if event[0] == "headers":
                await self._start_part(event[1])
            elif event[0] == "data":
                await self._data(event[1])
            else:
                self._end_part()

    async def _start_part(self, headers: dict[bytes, bytes]) -> None:
        disposition, params = parse_options_header(headers.get(b"content-disposition", b""))
        if disposition != b"form-data" or b"name" not in params:
            raise _malformed("Every part needs 'Content-Disposition: form-data; name=...'.")
        self.part_name = params[b"name"].decode("utf-8", "replace")
        filename = params.get(b"filename")
        self.part_is_file = filename is not None and self.part_name == FILE_FIELD
        self.buffer = bytearray()
        if self.part_is_file:
            if self.spool is not None or self.form.file is not None:
                raise _malformed("Only one 'content' file part is allowed.")
            assert filename is not None  # part_is_file says so
            name = filename.decode("utf-8", "replace")
            await self.on_file_start(self.form.fields, name)
            # md5 only when there is a claimed md5 to check (fields precede the file part).
            extra = ("md5",) if self.form.fields.get("md5_digest") else ()
            self.spool = HashingSpool(
                self.spool_dir, name, self.max_file_size, DEFAULT_ALGORITHMS + extra
            )

    async def _data(self, data: bytes | memoryview) -> None:
        if self.part_is_file:
            assert self.spool is not None
            await self.spool.write(data)
            return
        self.field_bytes += len(data)
        if self.field_bytes > MAX_FIELDS_BYTES:
            raise Problem(
                413,
                "form-too-large",
                "Form fields too large",
                f"Text fields may total at most {MAX_FIELDS_BYTES} bytes.",
            )
        self.buffer.extend(data)

    def _end_part(self) -> None:
        if self.part_is_file:
            return
        try:
            value = self.buffer.decode("utf-8")
        except UnicodeDecodeError:
            raise _malformed(f"Field {self.part_name!r} is not valid UTF-8.") from None
        self.form.fields.setdefault(self.part_name, []).append(value)

    async def result(self) -> ReceivedForm:
        if self.spool is not None:
            self.form.file = await self.spool.finish()
            self.spool = None
        return self.form

    async def abort(self) -> None:
        if self.spool is not None:
            await self.spool.abort()
            self.spool = None
        if self.form.file is not None:
            self.form.file.discard()
