"""The Braze REST API client (httpx, async): pacing, retries, typed errors. No Textual here.

Submodules load on first use, so importing one light module (say `instances`) does not
pull in the HTTP or AWS libraries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bctui.lazy import lazy_attributes

if TYPE_CHECKING:
    from bctui.braze.campaigns import Campaign, CampaignDetails
    from bctui.braze.client import BrazeClient, BrazeResponse, ClientStats
    from bctui.braze.errors import (
        BadRequest,
        BrazeError,
        BrazeHttpError,
        BrazeTimeout,
        BrazeTlsError,
        BrazeUnreachable,
        ExportAlreadyRunning,
        InvalidApiKey,
        MissingPermission,
        NotFound,
        PayloadTooLarge,
        RateLimited,
        ServerError,
        UnexpectedResponse,
        UnsupportedMediaType,
    )
    from bctui.braze.instances import INSTANCES, Instance, validate_endpoint
    from bctui.braze.permissions import (
        PERMISSIONS,
        PermissionCheck,
        PermissionReport,
        PermissionState,
        check_permissions,
    )
    from bctui.braze.ratelimit import Pacer, RateLimitInfo, WaitEvent, WaitReason, parse_rate_limit
    from bctui.braze.retry import RetryPolicy
    from bctui.braze.segments import Segment, SegmentDetails
    from bctui.braze.users import (
        MAX_OBJECTS,
        ExportStarted,
        TrackError,
        TrackResult,
        batches,
        track_batches,
        track_many,
    )

_EXPORTS = {
    "BadRequest": "bctui.braze.errors",
    "BrazeClient": "bctui.braze.client",
    "BrazeError": "bctui.braze.errors",
    "BrazeHttpError": "bctui.braze.errors",
    "BrazeResponse": "bctui.braze.client",
    "BrazeTimeout": "bctui.braze.errors",
    "BrazeTlsError": "bctui.braze.errors",
    "BrazeUnreachable": "bctui.braze.errors",
    "Campaign": "bctui.braze.campaigns",
    "CampaignDetails": "bctui.braze.campaigns",
    "ClientStats": "bctui.braze.client",
    "ExportAlreadyRunning": "bctui.braze.errors",
    "ExportStarted": "bctui.braze.users",
    "INSTANCES": "bctui.braze.instances",
    "Instance": "bctui.braze.instances",
    "InvalidApiKey": "bctui.braze.errors",
    "MAX_OBJECTS": "bctui.braze.users",
    "MissingPermission": "bctui.braze.errors",
    "NotFound": "bctui.braze.errors",
    "PERMISSIONS": "bctui.braze.permissions",
    "Pacer": "bctui.braze.ratelimit",
    "PayloadTooLarge": "bctui.braze.errors",
    "PermissionCheck": "bctui.braze.permissions",
    "PermissionReport": "bctui.braze.permissions",
    "PermissionState": "bctui.braze.permissions",
    "RateLimitInfo": "bctui.braze.ratelimit",
    "RateLimited": "bctui.braze.errors",
    "RetryPolicy": "bctui.braze.retry",
    "Segment": "bctui.braze.segments",
    "SegmentDetails": "bctui.braze.segments",
    "ServerError": "bctui.braze.errors",
    "TrackError": "bctui.braze.users",
    "TrackResult": "bctui.braze.users",
    "UnexpectedResponse": "bctui.braze.errors",
    "UnsupportedMediaType": "bctui.braze.errors",
    "WaitEvent": "bctui.braze.ratelimit",
    "WaitReason": "bctui.braze.ratelimit",
    "batches": "bctui.braze.users",
    "check_permissions": "bctui.braze.permissions",
    "parse_rate_limit": "bctui.braze.ratelimit",
    "track_batches": "bctui.braze.users",
    "track_many": "bctui.braze.users",
    "validate_endpoint": "bctui.braze.instances",
}

__all__ = [
    "INSTANCES",
    "MAX_OBJECTS",
    "PERMISSIONS",
    "BadRequest",
    "BrazeClient",
    "BrazeError",
    "BrazeHttpError",
    "BrazeResponse",
    "BrazeTimeout",
    "BrazeTlsError",
    "BrazeUnreachable",
    "Campaign",
    "CampaignDetails",
    "ClientStats",
    "ExportAlreadyRunning",
    "ExportStarted",
    "Instance",
    "InvalidApiKey",
    "MissingPermission",
    "NotFound",
    "Pacer",
    "PayloadTooLarge",
    "PermissionCheck",
    "PermissionReport",
    "PermissionState",
    "RateLimitInfo",
    "RateLimited",
    "RetryPolicy",
    "Segment",
    "SegmentDetails",
    "ServerError",
    "TrackError",
    "TrackResult",
    "UnexpectedResponse",
    "UnsupportedMediaType",
    "WaitEvent",
    "WaitReason",
    "batches",
    "check_permissions",
    "parse_rate_limit",
    "track_batches",
    "track_many",
    "validate_endpoint",
]


__getattr__ = lazy_attributes(__name__, _EXPORTS)
