"""S3 access (boto3): buckets, checks, export discovery, streaming reads. No Textual here.

Submodules load on first use, so importing one light module (say `instances`) does not
pull in the HTTP or AWS libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bctui.lazy import lazy_attributes

if TYPE_CHECKING:
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

_EXPORTS = {
    "ExportFile": "bctui.s3.layout",
    "S3Access": "bctui.s3.access",
    "S3AccessDenied": "bctui.s3.errors",
    "S3BucketNotFound": "bctui.s3.errors",
    "S3CorruptObject": "bctui.s3.errors",
    "S3CredentialsError": "bctui.s3.errors",
    "S3Error": "bctui.s3.errors",
    "S3ObjectNotFound": "bctui.s3.errors",
    "S3Unreachable": "bctui.s3.errors",
    "S3WrongRegion": "bctui.s3.errors",
    "export_prefix": "bctui.s3.layout",
    "segment_root": "bctui.s3.layout",
}

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


__getattr__ = lazy_attributes(__name__, _EXPORTS)
