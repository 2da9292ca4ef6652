"""S3-compatible backend (AWS S3, SeaweedFS, Ceph, R2 ...) through boto3.

``s3://bucket[/prefix]?endpoint_url=http://host:port&region=us-east-1`` with credentials from
the usual AWS environment or config files. Large files go up as managed multipart uploads
(flat memory); reads are ranged GETs, so archive inspection never downloads a whole wheel.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import io
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal, TypeGuard, get_args
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    InvalidS3AddressingStyleError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachable

from pallet.storage.base import check_key

_TRANSFER = TransferConfig(
    multipart_threshold=64 * 2**20, multipart_chunksize=64 * 2**20, max_concurrency=4
)


# Signing as of a fixed time swaps botocore's clock for the duration of one call; the lock keeps
# two such calls from interleaving (ordinary requests tolerate a few minutes of skew anyway).
_SIGNING_CLOCK = threading.Lock()


AddressingStyle = Literal["auto", "virtual", "path"]


def _is_addressing_style(value: str) -> TypeGuard[AddressingStyle]:
    return value in get_args(AddressingStyle)


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class S3BlobStore:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self._guards: bool | None = None
        self._probe_lock = threading.Lock()
        style = query.get("addressing_style", "path")
        if not _is_addressing_style(style):  # what botocore's Config would raise
            raise InvalidS3AddressingStyleError(s3_addressing_style=style)
        self.client = boto3.client(
            "s3",
            endpoint_url=query.get("endpoint_url"),
            region_name=query.get("region", "us-east-1"),
            config=Config(
                signature_version="s3v4",
                s3={"addressing_style": style},
                retries={"max_attempts": 4, "mode": "standard"},
                # A store that accepts no connection fails fast (botocore waits 60 s by
                # default); one that stops answering mid-request frees the worker in time.
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def put_file(self, key: str, path: Path, *, durable: bool = True) -> None:
        # An S3 PUT is atomic and durable once acknowledged; ``durable`` changes nothing.
        self.client.upload_file(str(path), self.bucket, self._key(key), Config=_TRANSFER)
        os.unlink(path)

    def flush(self) -> None:
        """Every acknowledged PUT is durable already."""

    def put_bytes(self, key: str, data: bytes, *, durable: bool = True) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def open(self, key: str, *, size: int | None = None) -> BinaryIO:
        size = self.size(key) if size is None else size
        if size is None:
            raise FileNotFoundError(key)
        return io.BufferedReader(_RangeReader(self, self._key(key), size), 2**20)

    def iter_bytes(
        self, key: str, start: int = 0, end: int | None = None, chunk_size: int = 256 * 1024
    ) -> Iterator[bytes]:
        if end is not None and end <= start:
            return
        rng = f"bytes={start}-" + ("" if end is None else str(end - 1))
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._key(key), Range=rng)["Body"]
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(key) from None
            raise
        try:
            yield from body.iter_chunks(chunk_size)
        finally:
            body.close()

    def size(self, key: str) -> int | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def move(self, src: str, dst: str) -> None:
        self.client.copy(
            {"Bucket": self.bucket, "Key": self._key(src)},
            self.bucket,
            self._key(dst),
            Config=_TRANSFER,
        )
        self.delete(src)

    def stored_sha256(self, key: str) -> tuple[int, str | None] | None:
        """(size, sha256 hex) as the store recorded them, without reading the object; the
        digest is None when the store keeps no sha256 checksum for it, and the whole answer
        None when there is no object."""
        try:
            head = self.client.head_object(
                Bucket=self.bucket, Key=self._key(key), ChecksumMode="ENABLED"
            )
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        b64 = head.get("ChecksumSHA256")
        if b64 and "-" not in b64:  # "<b64>-<parts>" is a composite multipart checksum
            return head["ContentLength"], base64.b64decode(b64).hex()
        return head["ContentLength"], None

    def local_path(self, key: str) -> Path | None:
        return None

    @property
    def content_guards_known(self) -> bool:
        return self._guards is not None

    def guards_content_addresses(self) -> bool:
        """Whether the store refuses a body that does not match its ``x-amz-checksum-sha256``
        and a ``If-None-Match: *`` PUT of an existing key. Only then may a client's pre-signed
        PUT target a content address: a store that ignores either (Ceph RGW 16.2, Swift's
        s3api) would let one client overwrite another's published blob. Asked once per
        process, with three small requests on a key of its own."""
        with self._probe_lock:
            if self._guards is None:
                self._guards = self._probe_guards()
            return self._guards

    def _probe_guards(self) -> bool:
        key = self._key(f"probe/{secrets.token_hex(16)}")
        body = b"pallet: does this store check what a pre-signed PUT binds?"
        good = base64.b64encode(hashlib.sha256(body).digest()).decode()
        wrong = base64.b64encode(hashlib.sha256(body + b"!").digest()).decode()
        put = functools.partial(self.client.put_object, Bucket=self.bucket, Key=key, Body=body)
        try:
            try:
                put(ChecksumSHA256=wrong)
                return False  # stored bytes that do not match their checksum
            except ClientError:
                pass
            put(ChecksumSHA256=good)
            try:
                put(ChecksumSHA256=good, IfNoneMatch="*")
                return False  # overwrote an existing key
            except ClientError as exc:
                return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412
        finally:
            self.client.delete_object(Bucket=self.bucket, Key=key)

    def presign_put(self, key: str, *, headers: dict[str, str], expires_in: int) -> str:
        """A SigV4 URL binding the given headers (lower-case names, see storage.signed)."""
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        mapping = {
            "content-length": ("ContentLength", int),
            "content-type": ("ContentType", str),
            "x-amz-checksum-sha256": ("ChecksumSHA256", str),
            "if-none-match": ("IfNoneMatch", str),
        }
        for name, value in headers.items():
            param, cast = mapping[name]
            params[param] = cast(value)
        return self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)

    def presign_get(self, key: str, *, filename: str, window: int) -> str:
        """A download URL that stays the same for ``window`` seconds (pip and uv cache by URL),
        valid for at least ``window`` more seconds: it is signed as of the window's start."""
        now = int(time.time())
        start = now - now % window
        params = {
            "Bucket": self.bucket,
            "Key": self._key(key),
            "ResponseContentDisposition": f'attachment; filename="{filename}"',
        }
        signed_at = datetime.fromtimestamp(start, UTC).replace(tzinfo=None)
        with _SIGNING_CLOCK, mock.patch("botocore.auth.get_current_datetime", lambda: signed_at):
            return self.client.generate_presigned_url(
                "get_object", Params=params, ExpiresIn=2 * window
            )

    def modified(self, key: str) -> float | None:
        """The object's Last-Modified (epoch seconds), or None when absent."""
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return head["LastModified"].timestamp()

    def list_keys(self, prefix: str) -> Iterator[tuple[str, float]]:
        full = self._key(prefix.rstrip("/")) + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:], obj["LastModified"].timestamp()

    def stale_multipart(self, prefix: str, older_than: float) -> list[tuple[str, str]]:
        """(key, upload id) of multipart uploads under ``prefix`` started before the time."""
        full = self._key(prefix.rstrip("/")) + "/"
        strip = len(self.prefix) + 1 if self.prefix else 0
        found = []
        for page in self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=full
        ):
            for up in page.get("Uploads", []):
                if up["Initiated"].timestamp() < older_than:
                    found.append((up["Key"][strip:], up["UploadId"]))
        return found

    # Multipart uploads, for clients that PUT parts straight to the store.
    def create_multipart(self, key: str) -> str:
        return self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._key(key), ContentType="application/octet-stream"
        )["UploadId"]

    def presign_part(
        self, key: str, upload_id: str, number: int, size: int, expires_in: int
    ) -> str:
        return self.client.generate_presigned_url(
            "upload_part",
            Params={
                "Bucket": self.bucket,
                "Key": self._key(key),
                "UploadId": upload_id,
                "PartNumber": number,
                "ContentLength": size,
            },
            ExpiresIn=expires_in,
        )

    def list_parts(self, key: str, upload_id: str) -> list[tuple[int, str, int]] | None:
        """(number, etag, size) of the parts stored so far; None once the upload is gone
        (assembled, or aborted)."""
        parts, marker = [], 0
        while True:
            try:
                resp = self.client.list_parts(
                    Bucket=self.bucket,
                    Key=self._key(key),
                    UploadId=upload_id,
                    PartNumberMarker=marker,
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchUpload":
                    return None
                raise
            parts += [(p["PartNumber"], p["ETag"], p["Size"]) for p in resp.get("Parts", [])]
            if not resp.get("IsTruncated"):
                return parts
            marker = resp["NextPartNumberMarker"]

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self._key(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]},
        )

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=self._key(key), UploadId=upload_id
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def unavailable(self, exc: BaseException) -> bool:
        if isinstance(exc, (EndpointUnreachable, HTTPClientError)):
            return True  # refused, reset, timed out: after botocore's own retries
        if isinstance(exc, ClientError):
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            return status >= 500
        return False


class _RangeReader(io.RawIOBase):
    """A seekable read-only view of an object, one ranged GET per read (buffered by caller).

    The object's last ``TAIL`` bytes are fetched with the first read that falls in them and
    then served from memory: a wheel's end record, central directory and (written last)
    ``.dist-info`` files usually all lie there, so inspecting it costs one GET, not one per
    seek."""

    TAIL = 2**20

    def __init__(self, store: S3BlobStore, key: str, size: int) -> None:
        self.store, self.key, self.length, self.pos = store, key, size, 0
        self.tail_start = max(0, size - self.TAIL)
        self.tail: bytes | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.length}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def _get(self, start: int, end: int) -> bytes:
        resp = self.store.client.get_object(
            Bucket=self.store.bucket, Key=self.key, Range=f"bytes={start}-{end - 1}"
        )
        data: bytes = resp["Body"].read()
        return data

    def readinto(self, buffer: Any) -> int:
        if self.pos >= self.length:
            return 0
        end = min(self.pos + len(buffer), self.length)
        if self.pos >= self.tail_start:
            if self.tail is None:
                self.tail = self._get(self.tail_start, self.length)
            data = self.tail[self.pos - self.tail_start : end - self.tail_start]
        else:
            data = self._get(self.pos, end)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)
