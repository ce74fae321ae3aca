"""GET /segments/list (every page) and GET /segments/details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bctui.braze import fields
from bctui.braze.pagination import fetch_all, fetch_one

if TYPE_CHECKING:
    from bctui.braze.client import BrazeClient

LIST_PATH = "/segments/list"
DETAILS_PATH = "/segments/details"


@dataclass(frozen=True)
class Segment:
    """One entry of /segments/list; fields Braze adds later are kept in `raw`."""

    id: str
    name: str
    analytics_tracking_enabled: bool | None = None
    tags: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Segment:
        """Build from one item of Braze's `segments` list."""
        return cls(
            id=fields.text(data, "id") or "",
            name=fields.text(data, "name") or "",
            analytics_tracking_enabled=fields.flag(data, "analytics_tracking_enabled"),
            tags=fields.names(data, "tags"),
            raw=fields.rest(data, {"id", "name", "analytics_tracking_enabled", "tags"}),
        )


@dataclass(frozen=True)
class SegmentDetails:
    """The answer of /segments/details (dates as Braze's ISO 8601 text)."""

    id: str
    name: str
    description: str | None = None
    text_description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, segment_id: str, data: Mapping[str, Any]) -> SegmentDetails:
        """Build from Braze's answer for `segment_id`."""
        known = {
            "message", "name", "description", "text_description", "created_at", "updated_at",
            "tags", "teams",
        }  # fmt: skip
        return cls(
            id=segment_id,
            name=fields.text(data, "name") or "",
            description=fields.text(data, "description"),
            text_description=fields.text(data, "text_description"),
            created_at=fields.text(data, "created_at"),
            updated_at=fields.text(data, "updated_at"),
            tags=fields.names(data, "tags"),
            teams=fields.names(data, "teams"),
            raw=fields.rest(data, known),
        )


async def list_segments(
    client: BrazeClient, *, sort_direction: Literal["asc", "desc"] | None = None
) -> list[Segment]:
    """Every (non-archived) segment, oldest first unless `sort_direction="desc"`."""
    params: dict[str, str | int | bool] = {}
    if sort_direction is not None:
        params["sort_direction"] = sort_direction
    items = await fetch_all(client, LIST_PATH, "segments", params)
    return [Segment.from_json(item) for item in items]


async def segment_details(client: BrazeClient, segment_id: str) -> SegmentDetails:
    """Details of one segment; an unknown id raises `NotFound` (Braze answers 400 or 404)."""
    data = await fetch_one(client, DETAILS_PATH, "segment_id", segment_id, "segment")
    return SegmentDetails.from_json(segment_id, data)
