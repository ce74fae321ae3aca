"""API key permissions per endpoint (reference §3) and the routes the simulator serves."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

TRACK = "track"  # the /users/track burst limit
SHARED = "shared"  # the default hourly limit shared by the other endpoints

# Every permission a Braze REST API key can carry that the reference names.
ALL_PERMISSIONS: frozenset[str] = frozenset(
    {
        "users.track",
        "users.track.bulk",
        "users.track.sync",
        "users.export.segment",
        "users.export.ids",
        "segments.list",
        "segments.details",
        "segments.data_series",
        "campaigns.list",
        "campaigns.details",
    }
)


@dataclass(frozen=True)
class Route:
    """One simulated endpoint: the permission it needs and the limit it counts against."""

    name: str  # the handler's name on the simulator
    permission: str
    limit: str  # TRACK | SHARED
    faults: bool  # whether fault injection applies


ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/users/track"): Route("track", "users.track", TRACK, True),
    ("POST", "/users/export/segment"): Route(
        "export_segment", "users.export.segment", SHARED, True
    ),
    ("GET", "/segments/list"): Route("segments_list", "segments.list", SHARED, False),
    ("GET", "/segments/details"): Route("segment_details", "segments.details", SHARED, False),
    ("GET", "/campaigns/list"): Route("campaigns_list", "campaigns.list", SHARED, False),
    ("GET", "/campaigns/details"): Route("campaign_details", "campaigns.details", SHARED, False),
}


def check_permissions(permissions: Iterable[str]) -> frozenset[str]:
    """The permissions as a set, refusing names Braze does not have."""
    if isinstance(permissions, str) or not isinstance(permissions, Iterable):
        raise ValueError("permissions must be a list of permission names")
    chosen = frozenset(permissions)
    unknown = sorted(p for p in chosen if p not in ALL_PERMISSIONS)
    if unknown:
        raise ValueError(
            f"unknown permission(s): {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(ALL_PERMISSIONS))}"
        )
    return chosen
