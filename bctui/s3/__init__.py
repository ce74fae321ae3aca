"""S3 access (boto3): buckets, checks, export discovery, streaming reads. No Textual here."""

from __future__ import annotations

from bctui.s3.access import S3Access
from bctui.s3.errors import (
    S3AccessDenied,
    S3BucketNotFound,
    S3CorruptObject,
    S3CredentialsError,
    S3Error,
    S3ObjectNotFound,
    S3Unreachable,
    S3WrongRegion,
)
from bctui.s3.layout import ExportFile, export_prefix, segment_root

__all__ = [
    "ExportFile",
    "S3Access",
    "S3AccessDenied",
    "S3BucketNotFound",
    "S3CorruptObject",
    "S3CredentialsError",
    "S3Error",
    "S3ObjectNotFound",
    "S3Unreachable",
    "S3WrongRegion",
    "export_prefix",
    "segment_root",
]
