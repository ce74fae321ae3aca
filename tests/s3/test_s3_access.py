"""S3Access against moto's real server: buckets, export discovery, streaming reads, errors."""

from __future__ import annotations

import gzip
import hashlib
import io
import socket
import zipfile
from typing import Any

import boto3
import pytest
from s3_standin import S3Reply, S3Request, S3StandIn, s3_error

from bctui.s3 import (
    S3Access,
    S3AccessDenied,
    S3BucketNotFound,
    S3CorruptObject,
    S3CredentialsError,
    S3Error,
    S3ObjectNotFound,
    S3Unreachable,
    S3WrongRegion,
)
from bctui.secret import Secret

SECRET = "moto-secret-access-key-0123456789"
SEGMENT = "seg-1"
PREFIX = "0d3f6a4e-1111-2222-3333-444455556666-1736813469"  # requested 2025-01-14


def _access(endpoint: str, **kwargs: Any) -> S3Access:
    return S3Access("AKIAMOTO", Secret(SECRET), endpoint_url=endpoint, **kwargs)


def _admin(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="admin",
        aws_secret_access_key="admin",
        region_name="us-east-1",
    )


def _gz(lines: list[bytes]) -> bytes:
    return gzip.compress(b"\n".join(lines) + b"\n")


def test_list_and_check_buckets(s3_endpoint: str) -> None:
    admin = _admin(s3_endpoint)
    for name in ("zeta", "alpha"):
        admin.create_bucket(Bucket=name)
    access = _access(s3_endpoint)
    assert access.list_buckets() == ["alpha", "zeta"]
    access.check_bucket("alpha")
    assert SECRET not in repr(access)


def test_a_missing_bucket(s3_endpoint: str) -> None:
    with pytest.raises(S3BucketNotFound) as caught:
        _access(s3_endpoint).check_bucket("no-such-bucket")
    error = caught.value
    assert "no-such-bucket" in error.where and s3_endpoint in error.where
    assert "bucket name" in error.fix


def test_an_unreachable_endpoint() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    access = _access(f"http://127.0.0.1:{port}", connect_timeout=1)
    with pytest.raises(S3Unreachable) as caught:
        access.check_bucket("any")
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "endpoint URL" in caught.value.fix


def _put_export(admin: Any, root: str, date: str, prefix: str, names: list[str]) -> list[str]:
    keys = []
    for name in names:
        key = f"{root}segment-export/{SEGMENT}/{date}/{prefix}/{name}"
        admin.put_object(Bucket="exports", Key=key, Body=_gz([name.encode()]))
        keys.append(key)
    return keys


@pytest.mark.parametrize("root", ["", "braze/data"])
def test_find_export_files_across_date_folders(s3_endpoint: str, root: str) -> None:
    admin = _admin(s3_endpoint)
    admin.create_bucket(Bucket="exports")
    base = f"{root}/" if root else ""
    # Completed after midnight: files in the next day's folder; one file per 5,000 users.
    wanted = _put_export(admin, base, "2025-01-14", PREFIX, ["a1.gz", "a2.zip"])
    wanted += _put_export(admin, base, "2025-01-15", PREFIX, [f"b{i:02}.gz" for i in range(12)])
    _put_export(admin, base, "2025-01-15", PREFIX, ["notes.txt", "_SUCCESS"])
    _put_export(admin, base, "2025-01-15", "other-export-1736813470", ["c.gz"])
    _put_export(admin, base, "2024-12-01", PREFIX, ["too-early.gz"])  # before the request day
    _put_export(admin, base, "latest", PREFIX, ["not-a-date.gz"])
    access = _access(s3_endpoint, page_size=5)  # several pages per listing

    found = access.find_export_files("exports", f"/{root}/" if root else "", SEGMENT, PREFIX)
    assert [f.key for f in found] == sorted(wanted)
    first = found[0]
    assert first.size > 0 and first.etag and first.last_modified.tzinfo is not None

    only = access.find_export_files("exports", root, SEGMENT, PREFIX, dates=["2025-01-14"])
    assert [f.key for f in only] == sorted(wanted[:2])
    assert access.find_export_files("exports", root, "other-segment", PREFIX) == []


def test_iter_lines_streams_gzip_and_zip(s3_endpoint: str) -> None:
    admin = _admin(s3_endpoint)
    admin.create_bucket(Bucket="exports")
    lines = [b'{"external_id": "u%d", "pad": "%s"}' % (i, b"x" * (i % 50)) for i in range(20_000)]
    admin.put_object(Bucket="exports", Key="a.gz", Body=_gz(lines[:10_000]) + _gz(lines[10_000:]))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("users-1.txt", b"\n".join(lines[:3]) + b"\n")
        handle.writestr("users-2.txt", b"\n" + lines[3] + b"\n")
    admin.put_object(Bucket="exports", Key="b.zip", Body=archive.getvalue())
    access = _access(s3_endpoint)

    assert [line for _, line in access.iter_lines("exports", "a.gz")] == lines
    assert list(access.iter_lines("exports", "b.zip")) == [
        (1, lines[0]), (2, lines[1]), (3, lines[2]), (5, lines[3]),
    ]  # fmt: skip


def test_corrupt_and_missing_objects(s3_endpoint: str) -> None:
    admin = _admin(s3_endpoint)
    admin.create_bucket(Bucket="exports")
    noise = [hashlib.sha1(b"%d" % i).hexdigest().encode() for i in range(1000)]
    admin.put_object(Bucket="exports", Key="bad.gz", Body=_gz(noise)[:-40])
    admin.put_object(Bucket="exports", Key="bad.zip", Body=b"PK\x03\x04not a zip at all")
    access = _access(s3_endpoint)
    for key in ("bad.gz", "bad.zip"):
        with pytest.raises(S3CorruptObject) as caught:
            list(access.iter_lines("exports", key))
        assert key in caught.value.where and "new export" in caught.value.fix
    with pytest.raises(S3ObjectNotFound) as missing:
        list(access.iter_lines("exports", "gone.gz"))
    assert "gone.gz" in missing.value.where


def test_a_body_cut_off_midway_is_resumed_with_a_range_request() -> None:
    body = _gz([b'{"n": %d, "r": "%s"}' % (i, hashlib.sha1(b"%d" % i).hexdigest().encode())
                for i in range(20_000)])  # fmt: skip
    etag = '"abc123"'

    def script(request: S3Request) -> S3Reply:
        start = request.headers.get("range", "bytes=0-")[6:].split("-")[0]
        offset = int(start or 0)
        headers = [("ETag", etag), ("Content-Type", "application/gzip")]
        if offset == 0:
            return S3Reply(200, body, headers, cut_after=len(body) // 3)
        assert request.headers.get("if-match") == etag
        headers.append(("Content-Range", f"bytes {offset}-{len(body) - 1}/{len(body)}"))
        return S3Reply(206, body[offset:], headers)

    with S3StandIn(script) as server:
        lines = list(_access(server.url).iter_lines("exports", "big.gz"))
        assert "range" not in server.seen[0].headers
        resumed = [r.headers["range"] for r in server.seen if "range" in r.headers]
    assert len(lines) == 20_000 and lines[-1][0] == 20_000
    assert resumed and all(int(r[6:-1]) > 0 for r in resumed)


@pytest.mark.parametrize(
    ("replies", "expected", "says"),
    [
        ([s3_error(403, "InvalidAccessKeyId", "The AWS Access Key Id does not exist")],
         S3CredentialsError, "InvalidAccessKeyId"),
        ([s3_error(403, "SignatureDoesNotMatch", "The request signature does not match")],
         S3CredentialsError, "SignatureDoesNotMatch"),
        ([s3_error(403, "AccessDenied", "Access Denied")], S3AccessDenied, "s3:ListBucket"),
        ([s3_error(404, "NoSuchBucket", "The specified bucket does not exist")],
         S3BucketNotFound, "bucket name"),
        ([s3_error(400, "AuthorizationHeaderMalformed",
                   "the region 'us-east-1' is wrong; expecting 'eu-west-1'", Region="eu-west-1")],
         S3WrongRegion, "region to 'eu-west-1'"),
    ],
)  # fmt: skip
def test_s3_error_codes_become_clear_errors(
    replies: list[S3Reply], expected: type[Exception], says: str
) -> None:
    # A HEAD answer has no body: a 403 there is followed by a listing whose code decides.
    def script(request: S3Request) -> S3Reply:
        if request.method == "HEAD":
            return S3Reply(403 if replies[0].status == 403 else replies[0].status)
        return replies[0]

    with S3StandIn(script) as server:
        with pytest.raises(expected) as caught:
            _access(server.url).check_bucket("exports")
        with pytest.raises(expected):
            _access(server.url).list_buckets()
    text = f"{caught.value} {caught.value.fix}"  # type: ignore[attr-defined]
    assert says in text
    assert "'exports'" in text
    assert SECRET not in text


def test_a_malformed_endpoint_url_is_a_clear_error() -> None:
    with pytest.raises(S3Error) as caught:
        S3Access("AKIAMOTO", Secret(SECRET), endpoint_url="not a url")
    assert "Invalid endpoint" in caught.value.message
    assert "endpoint URL" in caught.value.fix
