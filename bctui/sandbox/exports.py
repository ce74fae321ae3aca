"""Segment export jobs: files written to S3 in the background, then the callback (§8.4–8.7)."""

from __future__ import annotations

import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bctui.sandbox.export_format import pack
from bctui.secret import Secret

MAX_CONCURRENT_EXPORTS = 100  # per company (reference §8.7)
CALLBACK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class S3Config:
    """Where the workspace's "Amazon S3 integration" writes exports."""

    endpoint_url: str | None
    bucket: str
    access_key_id: str
    secret_access_key: Secret
    root: str = ""  # the "AWS S3 Bucket Folder", a key prefix
    region: str = "us-east-1"

    def key_prefix(self) -> str:
        """`root/` (or nothing) in front of `segment-export/…`."""
        root = self.root.strip("/")
        return f"{root}/" if root else ""


_clients: dict[tuple[Any, ...], Any] = {}
_clients_lock = threading.Lock()


def s3_client(config: S3Config) -> Any:
    """A boto3 S3 client for `config`, shared (boto3 clients are thread-safe)."""
    key = (config.endpoint_url, config.access_key_id, config.secret_access_key, config.region)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            import boto3  # imported here: boto3 is slow to import and only exports need it
            from botocore.config import Config

            client = boto3.session.Session().client(
                "s3",
                endpoint_url=config.endpoint_url,
                aws_access_key_id=config.access_key_id,
                aws_secret_access_key=config.secret_access_key.reveal(),
                region_name=config.region,
                config=Config(retries={"max_attempts": 3, "mode": "standard"}),
            )
            _clients[key] = client
        return client


def ensure_bucket(config: S3Config) -> None:
    """Create the export bucket if it does not exist yet."""
    client = s3_client(config)
    try:
        client.head_bucket(Bucket=config.bucket)
    except Exception:  # botocore's ClientError (404) — create it
        client.create_bucket(Bucket=config.bucket)


@dataclass(eq=False)
class ExportJob:
    """One running or finished segment export."""

    segment_id: str
    object_prefix: str
    prefix: str  # the S3 key prefix the files go under, ending in "/"
    output_format: str
    callback_endpoint: str | None
    requested_at: float
    state: str = "pending"  # pending | writing | done | failed | cancelled
    keys: list[str] = field(default_factory=list)
    users: int = 0
    error: str | None = None
    callback_status: int | str | None = None
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job has finished (in any state); False on timeout."""
        return self.done.wait(timeout)

    def as_json(self) -> dict[str, Any]:
        """The job's status for `/_sandbox/exports`."""
        return {
            "segment_id": self.segment_id,
            "object_prefix": self.object_prefix,
            "prefix": self.prefix,
            "output_format": self.output_format,
            "state": self.state,
            "files": list(self.keys),
            "users": self.users,
            "error": self.error,
            "callback_status": self.callback_status,
        }


@dataclass(frozen=True)
class ExportPacing:
    """How an export job spaces out its files (copied from the settings when it starts)."""

    delay_seconds: float
    file_interval: float
    file_users: int
    callback: bool
    compress_level: int = 6  # bench mode uses 1, so compression never holds a benchmark back


class ExportManager:
    """Starts export jobs in background threads and tracks which segments are exporting."""

    def __init__(self, s3_config: S3Config | None) -> None:
        self.s3_config = s3_config
        self.jobs: list[ExportJob] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self.files_written = 0
        self.users_written = 0
        self.callbacks_sent = 0
        self.callbacks_failed = 0

    def running(self) -> list[ExportJob]:
        """Jobs that have not finished."""
        with self._lock:
            return [job for job in self.jobs if not job.done.is_set()]

    def busy_reason(self, segment_id: str) -> str | None:
        """Why a new export of `segment_id` must be refused with a 429, else None."""
        running = self.running()
        if any(job.segment_id == segment_id for job in running):
            return (
                f"An export of segment {segment_id} is still running; a company may run at most "
                "one export per segment at a time"
            )
        if len(running) >= MAX_CONCURRENT_EXPORTS:
            return f"At most {MAX_CONCURRENT_EXPORTS} segment exports may run at the same time"
        return None

    def start(
        self,
        segment_id: str,
        output_format: str,
        callback_endpoint: str | None,
        lines: Iterable[bytes],
        pacing: ExportPacing,
        now: float,
    ) -> ExportJob:
        """Register a job and start writing its files; returns at once."""
        if self.s3_config is None:
            raise RuntimeError("no S3 integration configured")
        # RANDOM_UUID-TIMESTAMP, with a standard Unix epoch as real keys show (reference §8.6).
        object_prefix = f"{uuid.uuid4()}-{int(now)}"
        # The date folder is the UTC date of the request, as Braze's own S3 reader assumes
        # (the docs say "the date the successful callback is received").
        day = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")
        prefix = f"{self.s3_config.key_prefix()}segment-export/{segment_id}/{day}/{object_prefix}/"
        job = ExportJob(segment_id, object_prefix, prefix, output_format, callback_endpoint, now)
        thread = threading.Thread(
            target=self._run,
            args=(job, iter(lines), pacing),
            name=f"sandbox-export-{object_prefix[:8]}",
            daemon=True,
        )
        with self._lock:
            self.jobs.append(job)
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return job

    def close(self, timeout: float = 10.0) -> None:
        """Cancel waiting jobs and wait for the threads to finish."""
        self._closing.set()
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self, job: ExportJob, lines: Iterator[bytes], pacing: ExportPacing) -> None:
        try:
            if self._closing.wait(pacing.delay_seconds):
                job.state = "cancelled"
                return
            job.state = "writing"
            first = True
            for chunk in _chunks(lines, pacing.file_users):
                if not first and self._closing.wait(pacing.file_interval):
                    job.state = "cancelled"
                    return
                first = False
                self._write_file(job, chunk, pacing)
            # An empty segment writes no files at all; the callback still reports success.
            job.state = "done"
            if pacing.callback and job.callback_endpoint:
                self._send_callback(job)
        except Exception as exc:  # an S3 failure ends the job; Braze would email the user
            job.state = "failed"
            job.error = f"{type(exc).__name__}: {exc}"
        finally:
            job.done.set()

    def _write_file(self, job: ExportJob, chunk: list[bytes], pacing: ExportPacing) -> None:
        assert self.s3_config is not None
        name = secrets.token_hex(16)  # 32 lowercase hex characters, random per file
        extension = ".gz" if job.output_format == "gzip" else ".zip"
        body = pack(chunk, job.output_format, f"{name}.txt", level=pacing.compress_level)
        key = f"{job.prefix}{name}{extension}"
        content_type = "application/gzip" if job.output_format == "gzip" else "application/zip"
        s3_client(self.s3_config).put_object(
            Bucket=self.s3_config.bucket, Key=key, Body=body, ContentType=content_type
        )
        with self._lock:
            job.keys.append(key)
            job.users += len(chunk)
            self.files_written += 1
            self.users_written += len(chunk)

    def _send_callback(self, job: ExportJob) -> None:
        """POST `{"success": true}` (JSON) to the callback endpoint; one attempt, no retries.

        Content type, retries and any failure payload are UNCONFIRMED (reference §8.5); a
        failed export sends no callback.
        """
        assert job.callback_endpoint is not None
        request = urllib.request.Request(
            job.callback_endpoint,
            data=b'{"success":true}',
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT_SECONDS) as response:
                job.callback_status = int(response.status)
            ok = True
        except urllib.error.HTTPError as exc:
            job.callback_status = exc.code
            ok = False
        except (OSError, ValueError) as exc:  # unreachable, refused, not a URL
            job.callback_status = f"{type(exc).__name__}: {exc}"
            ok = False
        with self._lock:
            if ok:
                self.callbacks_sent += 1
            else:
                self.callbacks_failed += 1

    def stats(self) -> dict[str, int]:
        """Counters for `/_sandbox/stats`."""
        with self._lock:
            return {
                "exports_started": len(self.jobs),
                "exports_running": sum(1 for j in self.jobs if not j.done.is_set()),
                "export_files": self.files_written,
                "export_users": self.users_written,
                "callbacks_sent": self.callbacks_sent,
                "callbacks_failed": self.callbacks_failed,
            }


def _chunks(lines: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    chunk: list[bytes] = []
    for line in lines:
        chunk.append(line)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
