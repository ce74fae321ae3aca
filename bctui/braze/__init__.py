"""The Braze REST API client (httpx, async): pacing, retries, typed errors. No Textual here."""

from __future__ import annotations

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
