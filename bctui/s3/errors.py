"""Errors of S3 access, each naming the bucket (and key or endpoint) and a fix, never the secret."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProxyConnectionError,
    ReadTimeoutError,
)

from bctui.errors import BctuiError, NotFoundError
from bctui.secret import Secret

MIN_REDACTED = 4
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "InvalidSecurity",
        "UnrecognizedClientException",
    }
)
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
_MISSING_KEY_CODES = frozenset({"NoSuchKey", "NoSuchVersion"})
_DENIED_CODES = frozenset({"AccessDenied", "AllAccessDisabled", "AccountProblem", "Forbidden"})
_REGION_CODES = frozenset(
    {"PermanentRedirect", "IllegalLocationConstraintException", "AuthorizationHeaderMalformed"}
)


class S3Error(BctuiError):
    """An S3 operation failed; `code` is S3's error code (or the HTTP status as text)."""

    def __init__(
        self,
        message: str,
        *,
        bucket: str = "",
        key: str = "",
        endpoint: str = "",
        code: str = "",
        fix: str = "",
    ) -> None:
        self.bucket = bucket
        self.key = key
        self.endpoint = endpoint
        self.code = code
        where = "S3"
        if bucket:
            where += f" bucket {bucket!r}"
        if key:
            where += f" key {key!r}"
        if endpoint:
            where += f" at {endpoint}"
        super().__init__(message, where=where, fix=fix)


class S3CredentialsError(S3Error):
    """The access key id or secret is wrong (InvalidAccessKeyId, SignatureDoesNotMatch, …)."""


class S3BucketNotFound(S3Error, NotFoundError):
    """The bucket does not exist (NoSuchBucket, or 404 on the bucket)."""


class S3ObjectNotFound(S3Error, NotFoundError):
    """The object does not exist (NoSuchKey); export files are deleted after a while."""


class S3AccessDenied(S3Error):
    """The credentials are valid but may not do this (AccessDenied / 403)."""


class S3WrongRegion(S3Error):
    """The bucket lives in another region than the one configured."""


class S3Unreachable(S3Error):
    """The S3 endpoint could not be reached or stopped answering."""


class S3CorruptObject(S3Error):
    """An export file is not valid gzip or zip (or was cut short)."""


def _endpoint_text(endpoint: str | None) -> str:
    return endpoint or "AWS S3"


def map_error(
    exc: Exception,
    *,
    bucket: str = "",
    key: str = "",
    endpoint: str | None = None,
    region: str = "",
    secret: Secret | None = None,
) -> S3Error:
    """The S3Error for a boto3/botocore exception (the secret removed from any text)."""
    where: dict[str, Any] = {"bucket": bucket, "key": key, "endpoint": endpoint or ""}
    if isinstance(exc, ClientError):
        return _from_client_error(exc, where, region, secret)
    text = _clean(str(exc), secret)
    if isinstance(
        exc,
        EndpointConnectionError
        | ConnectTimeoutError
        | ReadTimeoutError
        | ConnectionClosedError
        | ProxyConnectionError,
    ):
        return S3Unreachable(
            f"cannot reach {_endpoint_text(endpoint)} ({text})",
            code=type(exc).__name__,
            fix="check the S3 endpoint URL and region, DNS, proxies and firewalls",
            **where,
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return S3CredentialsError(
            "no complete S3 credentials were given",
            code=type(exc).__name__,
            fix="set both the access key id and the secret access key of this connection",
            **where,
        )
    fix = "check the connection's S3 settings (endpoint URL, region) and any AWS_* variables"
    if isinstance(exc, BotoCoreError):
        return S3Error(f"S3 request failed ({text})", code=type(exc).__name__, fix=fix, **where)
    return S3Error(f"S3 request failed ({type(exc).__name__}: {text})", fix=fix, **where)


def _from_client_error(
    exc: ClientError, where: dict[str, Any], region: str, secret: Secret | None
) -> S3Error:
    error = exc.response.get("Error", {})
    meta = exc.response.get("ResponseMetadata", {})
    status = int(meta.get("HTTPStatusCode") or 0)
    code = str(error.get("Code") or status or "")
    detail = _clean(str(error.get("Message") or exc), secret)
    said = f"{code}: {detail}" if detail and detail != code else code
    headers = meta.get("HTTPHeaders") or {}
    bucket_region = error.get("Region") or headers.get("x-amz-bucket-region") or ""
    if code in _CREDENTIAL_CODES:
        return S3CredentialsError(
            f"S3 refused the credentials ({said})",
            code=code,
            fix=(
                "check the access key id and secret access key of this connection (an IAM user's "
                "access key; the secret is shown only when the key is created)"
            ),
            **where,
        )
    moved = bool(bucket_region) and bucket_region != region
    if code in _REGION_CODES or status == 301 or (status == 400 and moved):
        actual = f"'{bucket_region}'" if bucket_region else "another region"
        return S3WrongRegion(
            f"the bucket is in {actual}, not in the configured region '{region}' ({said})",
            code=code,
            fix=f"set the connection's S3 region to {actual}",
            **where,
        )
    if code in _MISSING_KEY_CODES or (status == 404 and where["key"]):
        return S3ObjectNotFound(
            f"the object does not exist ({said})",
            code=code,
            fix=(
                "export files may have been removed (lifecycle rules) or not written yet; "
                "run the import again to request a new export"
            ),
            **where,
        )
    if code in _MISSING_BUCKET_CODES or status == 404:
        return S3BucketNotFound(
            f"the bucket does not exist ({said})",
            code=code,
            fix="check the bucket name (and the endpoint URL for S3-compatible stores)",
            **where,
        )
    if code in _DENIED_CODES or status == 403:
        return S3AccessDenied(
            f"access denied ({said})",
            code=code,
            fix=(
                "grant this key s3:ListBucket and s3:GetBucketLocation on the bucket and "
                "s3:GetObject on its objects (Braze's own key also needs s3:PutObject)"
            ),
            **where,
        )
    return S3Error(f"S3 refused the request ({said})", code=code, **where)


def _clean(text: str, secret: Secret | None) -> str:
    # A value this short is no secret, and cutting it out would garble ordinary words.
    if secret and len(secret.reveal()) >= MIN_REDACTED:
        text = text.replace(secret.reveal(), "[redacted]")
    return " ".join(text.split())
