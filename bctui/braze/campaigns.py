"""GET /campaigns/list (every page) and GET /campaigns/details."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bctui.braze import fields
from bctui.braze.pagination import fetch_all, fetch_one

if TYPE_CHECKING:
    from bctui.braze.client import BrazeClient

LIST_PATH = "/campaigns/list"
DETAILS_PATH = "/campaigns/details"


@dataclass(frozen=True)
class Campaign:
    """One entry of /campaigns/list; fields Braze adds later are kept in `raw`."""

    id: str
    name: str
    is_api_campaign: bool | None = None
    last_edited: str | None = None
    tags: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Campaign:
        """Build from one item of Braze's `campaigns` list."""
        return cls(
            id=fields.text(data, "id") or "",
            name=fields.text(data, "name") or "",
            is_api_campaign=fields.flag(data, "is_api_campaign"),
            last_edited=fields.text(data, "last_edited"),
            tags=fields.names(data, "tags"),
            raw=fields.rest(data, {"id", "name", "is_api_campaign", "last_edited", "tags"}),
        )


@dataclass(frozen=True)
class CampaignDetails:
    """The answer of /campaigns/details; `messages` is keyed by message variation id."""

    id: str
    name: str
    description: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    archived: bool | None = None
    draft: bool | None = None
    enabled: bool | None = None
    has_post_launch_draft: bool | None = None
    schedule_type: str | None = None
    channels: tuple[str, ...] = ()
    first_sent: str | None = None
    last_sent: str | None = None
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    messages: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    conversion_behaviors: tuple[Any, ...] = field(default=(), compare=False, hash=False)
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    @classmethod
    def from_json(cls, campaign_id: str, data: Mapping[str, Any]) -> CampaignDetails:
        """Build from Braze's answer for `campaign_id`."""
        known = {
            "message", "name", "description", "created_at", "updated_at", "archived", "draft",
            "enabled", "has_post_launch_draft", "schedule_type", "channels", "first_sent",
            "last_sent", "tags", "teams", "messages", "conversion_behaviors",
        }  # fmt: skip
        messages = data.get("messages")
        behaviors = data.get("conversion_behaviors")
        return cls(
            id=campaign_id,
            name=fields.text(data, "name") or "",
            description=fields.text(data, "description"),
            created_at=fields.text(data, "created_at"),
            updated_at=fields.text(data, "updated_at"),
            archived=fields.flag(data, "archived"),
            draft=fields.flag(data, "draft"),
            enabled=fields.flag(data, "enabled"),
            has_post_launch_draft=fields.flag(data, "has_post_launch_draft"),
            schedule_type=fields.text(data, "schedule_type"),
            channels=fields.names(data, "channels"),
            first_sent=fields.text(data, "first_sent"),
            last_sent=fields.text(data, "last_sent"),
            tags=fields.names(data, "tags"),
            teams=fields.names(data, "teams"),
            messages=dict(messages) if isinstance(messages, Mapping) else {},
            conversion_behaviors=tuple(behaviors) if isinstance(behaviors, list) else (),
            raw=fields.rest(data, known),
        )


async def list_campaigns(
    client: BrazeClient,
    *,
    include_archived: bool = False,
    sort_direction: Literal["asc", "desc"] | None = None,
    last_edited_after: str | None = None,
) -> list[Campaign]:
    """Every campaign (archived ones only on request), oldest first unless `"desc"`.

    `last_edited_after` is Braze's `last_edit.time[gt]` filter (`yyyy-MM-ddTHH:mm:ss`).
    """
    params: dict[str, str | int | bool] = {"include_archived": include_archived}
    if sort_direction is not None:
        params["sort_direction"] = sort_direction
    if last_edited_after:
        params["last_edit.time[gt]"] = last_edited_after
    items = await fetch_all(client, LIST_PATH, "campaigns", params)
    return [Campaign.from_json(item) for item in items]


async def campaign_details(client: BrazeClient, campaign_id: str) -> CampaignDetails:
    """Details of one campaign; an unknown id raises `NotFound` (Braze answers 400 or 404)."""
    data = await fetch_one(client, DETAILS_PATH, "campaign_id", campaign_id, "campaign")
    return CampaignDetails.from_json(campaign_id, data)
