"""S3 access for a connection: buckets, checks, export discovery and streaming reads (boto3)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Generator, Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
)
from urllib3.exceptions import ProtocolError

from bctui.s3.errors import S3CorruptObject, S3Error, map_error
from bctui.s3.layout import (
    ExportFile,
    date_text,
    export_prefix,
    is_date_folder,
    is_export_file,
    requested_on,
    segment_root,
)
from bctui.s3.stream import CorruptData, detect_format, gzip_lines, plain_lines, zip_lines
from bctui.secret import Secret

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

CHUNK_SIZE = 1 << 15
# A body read that breaks off is resumed from where it stopped (HTTP Range, same ETag).
MAX_RESUMES = 3
_STREAM_ERRORS = (
    IncompleteReadError,
    ReadTimeoutError,
    ResponseStreamingError,
    ConnectionClosedError,
    ProtocolError,
    ConnectionError,
)


class S3Access:
    """One boto3 S3 client for one set of credentials (thread-safe; calls block).

    Path-style addressing is used when `endpoint_url` is set (S3-compatible stores, moto).
    Every failure is raised as an `S3Error` subclass naming the bucket and a fix.
    """

    def __init__(
        self,
        access_key_id: str,
        secret_access_key: Secret,
        *,
        region: str = "us-east-1",
        endpoint_url: str | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        page_size: int = 1000,
    ) -> None:
        if not isinstance(secret_access_key, Secret):
            raise TypeError("secret_access_key must be a bctui.secret.Secret")
        self.access_key_id = access_key_id
        self.region = region or "us-east-1"
        self.endpoint_url = endpoint_url or None
        self.page_size = page_size
        self._secret = secret_access_key
        options: dict[str, Any] = {
            "region_name": self.region,
            "signature_version": "s3v4",
            "retries": {"max_attempts": 5, "mode": "standard"},
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
            "max_pool_connections": 16,
            "tcp_keepalive": True,
        }
        if self.endpoint_url:
            options["s3"] = {"addressing_style": "path"}
            # S3-compatible stores often lack the newer default CRC checksums.
            options["request_checksum_calculation"] = "when_required"
            options["response_checksum_validation"] = "when_required"
        try:
            session = boto3.session.Session()
            self._client: S3Client = session.client(
                "s3",
                aws_access_key_id=access_key_id,
                aws_secret_access_key=secret_access_key.reveal(),
                region_name=self.region,
                endpoint_url=self.endpoint_url,
                config=Config(**options),
            )
        except (BotoCoreError, ValueError) as exc:
            # e.g. an AWS_PROFILE naming no profile, or a malformed endpoint URL
            raise self._error(exc) from None

    def __repr__(self) -> str:
        return f"S3Access({self.access_key_id!r}, region={self.region!r})"

    def _error(self, exc: Exception, bucket: str = "", key: str = "") -> S3Error:
        return map_error(
            exc,
            bucket=bucket,
            key=key,
            endpoint=self.endpoint_url,
            region=self.region,
            secret=self._secret,
        )

    def list_buckets(self) -> list[str]:
        """The names of the buckets these credentials can see, sorted."""
        try:
            answer = self._client.list_buckets()
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None
        return sorted(item["Name"] for item in answer.get("Buckets", []) if "Name" in item)

    def check_bucket(self, bucket: str) -> None:
        """Make sure the bucket exists and its objects can be listed; raise a clear S3Error if not.

        A HEAD answer carries no error code, so a refused HEAD is followed by a listing whose
        error code tells bad credentials from denied access.
        """
        try:
            self._client.head_bucket(Bucket=bucket)
        except ClientError as exc:
            error = self._error(exc, bucket)
            if error.code not in ("403", "400"):
                raise error from None
        except BotoCoreError as exc:
            raise self._error(exc, bucket) from None
        try:
            self._client.list_objects_v2(Bucket=bucket, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, bucket) from None

    def list_files(self, bucket: str, prefix: str) -> Iterator[ExportFile]:
        """Every object under `prefix` (all pages), in key order."""
        paginator = self._client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(
                Bucket=bucket, Prefix=prefix, PaginationConfig={"PageSize": self.page_size}
            ):
                for item in page.get("Contents", []):
                    yield ExportFile(
                        key=item["Key"],
                        size=int(item.get("Size", 0)),
                        last_modified=item["LastModified"],
                        etag=str(item.get("ETag", "")).strip('"'),
                    )
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, bucket) from None

    def list_folders(self, bucket: str, prefix: str) -> list[str]:
        """The names of the "folders" directly under `prefix` (all pages)."""
        paginator = self._client.get_paginator("list_objects_v2")
        names: list[str] = []
        try:
            for page in paginator.paginate(
                Bucket=bucket,
                Prefix=prefix,
                Delimiter="/",
                PaginationConfig={"PageSize": self.page_size},
            ):
                for item in page.get("CommonPrefixes", []):
                    name = item.get("Prefix", "")[len(prefix) :].strip("/")
                    if name:
                        names.append(name)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, bucket) from None
        return names

    def find_export_files(
        self,
        bucket: str,
        root: str | None,
        segment_id: str,
        object_prefix: str,
        *,
        dates: Iterable[dt.date | str] | None = None,
    ) -> list[ExportFile]:
        """The `.gz`/`.zip` files of one export, sorted by key.

        The date folder is the day the export completed, which can differ from the day it was
        requested (around midnight UTC, or for long exports), so every date folder under
        `segment-export/<segment_id>/` is searched — from one day before the request day read from
        `object_prefix`, when it holds a plausible Unix time — unless `dates` names the candidates.
        """
        base = segment_root(root, segment_id)
        if dates is not None:
            folders = sorted({date_text(date) for date in dates})
        else:
            folders = [name for name in self.list_folders(bucket, base) if is_date_folder(name)]
            started = requested_on(object_prefix)
            if started is not None:
                earliest = (started - dt.timedelta(days=1)).isoformat()
                folders = [name for name in folders if name >= earliest]
        found: list[ExportFile] = []
        for folder in folders:
            prefix = export_prefix(root, segment_id, folder, object_prefix)
            found.extend(f for f in self.list_files(bucket, prefix) if is_export_file(f.key))
        return sorted(found, key=lambda item: item.key)

    def iter_lines(self, bucket: str, key: str) -> Iterator[tuple[int, bytes]]:
        """(line number, raw line) of an export file, decompressed as it streams.

        gzip is inflated chunk by chunk; zip is spooled to a temporary file first (it is read from
        its end) and the members whose name contains `.txt` (every member if none does) are read
        in turn. Numbering is 1-based and runs on across zip members; blank lines are skipped but
        counted. Memory stays constant whatever the file size. A file that is not valid gzip/zip
        raises `S3CorruptObject`.
        """
        chunks = self._chunks(bucket, key)
        head = next(chunks, b"")
        kind = detect_format(key, head)
        stream = chain([head], chunks)
        reader = {"gzip": gzip_lines, "zip": zip_lines}.get(kind, plain_lines)
        try:
            yield from reader(stream)
        except CorruptData as exc:
            raise S3CorruptObject(
                f"the export file is corrupt: {exc}",
                bucket=bucket,
                key=key,
                endpoint=self.endpoint_url or "",
                code="Corrupt",
                fix="request a new export (run the import again); the file cannot be read",
            ) from None
        finally:
            chunks.close()

    def _chunks(self, bucket: str, key: str) -> Generator[bytes, None, None]:
        """The object's bytes in chunks; a broken-off read resumes with a Range request."""
        offset = 0
        etag = ""
        resumes = 0
        while True:
            request: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if offset:
                request["Range"] = f"bytes={offset}-"
                if etag:
                    request["IfMatch"] = etag
            try:
                answer = self._client.get_object(**request)
            except (ClientError, BotoCoreError) as exc:
                raise self._error(exc, bucket, key) from None
            etag = etag or str(answer.get("ETag", ""))
            body = answer["Body"]
            try:
                for chunk in body.iter_chunks(CHUNK_SIZE):
                    offset += len(chunk)
                    yield chunk
                return
            except _STREAM_ERRORS as exc:
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise self._error(exc, bucket, key) from None
            finally:
                body.close()


__all__ = ["ExportFile", "S3Access", "export_prefix"]
