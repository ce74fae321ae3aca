"""Segments and campaigns: their records and the list/details endpoints (reference §9–12)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bctui.sandbox.model import User
from bctui.sandbox.times import iso_seconds, parse_last_edit

PAGE_SIZE = 100
Reply = tuple[int, dict[str, Any]]


@dataclass(frozen=True, eq=False)
class Segment:
    """A Braze segment: a predicate over user state, evaluated when it is exported."""

    id: str
    name: str
    predicate: Callable[[User], bool]
    description: str  # the human-readable description of the filters
    text_description: str = ""
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    analytics_tracking_enabled: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    archived: bool = False

    def summary(self) -> dict[str, Any]:
        """The item in `/segments/list`."""
        return {
            "id": self.id,
            "name": self.name,
            "analytics_tracking_enabled": self.analytics_tracking_enabled,
            "tags": list(self.tags),
        }

    def details(self) -> dict[str, Any]:
        """The body of `/segments/details`."""
        return {
            "message": "success",
            "created_at": iso_seconds(self.created_at),
            "updated_at": iso_seconds(self.updated_at),
            "name": self.name,
            "description": self.description,
            "text_description": self.text_description,
            "tags": list(self.tags),
            "teams": list(self.teams),
        }


@dataclass(frozen=True, eq=False)
class Campaign:
    """A Braze campaign with the fields `/campaigns/details` returns."""

    id: str
    name: str
    created_at: float
    last_edited: float
    description: str = ""
    archived: bool = False
    draft: bool = False
    enabled: bool = True
    has_post_launch_draft: bool = False
    is_api_campaign: bool = False
    schedule_type: str = "date"
    channels: tuple[str, ...] = ()
    first_sent: float | None = None
    last_sent: float | None = None
    tags: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    messages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # by variation id
    draft_messages: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    conversion_behaviors: Sequence[Mapping[str, Any]] = ()

    def summary(self) -> dict[str, Any]:
        """The item in `/campaigns/list`."""
        return {
            "id": self.id,
            "last_edited": iso_seconds(self.last_edited),
            "name": self.name,
            "is_api_campaign": self.is_api_campaign,
            "tags": list(self.tags),
        }

    def details(self, *, post_launch_draft: bool, translatable: bool) -> dict[str, Any]:
        """The body of `/campaigns/details`."""
        messages = (
            self.draft_messages
            if post_launch_draft and self.has_post_launch_draft
            else self.messages
        )
        rendered: dict[str, Any] = {}
        for variation_id, message in messages.items():
            item = dict(message)
            if translatable:
                item["has_translatable_content"] = message.get("channel") in ("email", "ios_push")
            rendered[variation_id] = item
        body: dict[str, Any] = {
            "message": "success",
            "created_at": iso_seconds(self.created_at),
            "updated_at": iso_seconds(self.last_edited),
            "archived": self.archived,
            "draft": self.draft,
            "enabled": self.enabled,
            "has_post_launch_draft": self.has_post_launch_draft,
            "name": self.name,
            "description": self.description,
            "schedule_type": self.schedule_type,
            "channels": list(self.channels),
            "tags": list(self.tags),
            "teams": list(self.teams),
            "messages": rendered,
            "conversion_behaviors": [dict(b) for b in self.conversion_behaviors],
        }
        # first_sent/last_sent are absent for campaigns that never sent (as Braze omits empties).
        if self.first_sent is not None:
            body["first_sent"] = iso_seconds(self.first_sent)
        if self.last_sent is not None:
            body["last_sent"] = iso_seconds(self.last_sent)
        return body


def _error(message: str) -> Reply:
    return 400, {"message": message}


def _page(query: Mapping[str, str]) -> int | str:
    raw = query.get("page", "0").strip() or "0"
    if not raw.isdigit():
        return f"page must be a non-negative integer, got {raw!r}"
    return int(raw)


def _descending(query: Mapping[str, str]) -> bool | str:
    raw = query.get("sort_direction", "asc").strip().lower() or "asc"
    if raw not in ("asc", "desc"):
        return f"sort_direction must be 'asc' or 'desc', got {raw!r}"
    return raw == "desc"


def _flag(query: Mapping[str, str], name: str) -> bool | str:
    raw = query.get(name, "false").strip().lower() or "false"
    if raw not in ("true", "false"):
        return f"{name} must be true or false, got {raw!r}"
    return raw == "true"


def _paginate(items: list[Any], page: int) -> list[Any]:
    """Page `page` (0-based) of 100; a page past the end is empty (UNCONFIRMED, recommended)."""
    return items[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]


def segments_list(segments: Sequence[Segment], query: Mapping[str, str]) -> Reply:
    """`GET /segments/list`: 100 per page, by creation time, archived segments excluded."""
    page = _page(query)
    if isinstance(page, str):
        return _error(page)
    descending = _descending(query)
    if isinstance(descending, str):
        return _error(descending)
    live = sorted((s for s in segments if not s.archived), key=lambda s: (s.created_at, s.id))
    if descending:
        live.reverse()
    return 200, {"segments": [s.summary() for s in _paginate(live, page)], "message": "success"}


def segment_details(segments: Mapping[str, Segment], query: Mapping[str, str]) -> Reply:
    """`GET /segments/details?segment_id=`."""
    segment = segments.get(query.get("segment_id", ""))
    if segment is None:
        # UNCONFIRMED text, by analogy with the observed /canvas/details answer (reference §10).
        return _error("segment_id must be a string of the Segment api identifier")
    return 200, segment.details()


def campaigns_list(campaigns: Sequence[Campaign], query: Mapping[str, str]) -> Reply:
    """`GET /campaigns/list`: 100 per page, `include_archived`, `last_edit.time[gt]`."""
    page = _page(query)
    if isinstance(page, str):
        return _error(page)
    descending = _descending(query)
    if isinstance(descending, str):
        return _error(descending)
    include_archived = _flag(query, "include_archived")
    if isinstance(include_archived, str):
        return _error(include_archived)
    chosen = [c for c in campaigns if include_archived or not c.archived]
    edited_after = query.get("last_edit.time[gt]")
    if edited_after is not None:
        threshold = parse_last_edit(edited_after)
        if threshold is None:
            return _error(
                f"last_edit.time[gt] must be a time like 2020-06-28T23:59:59, got {edited_after!r}"
            )
        chosen = [c for c in chosen if c.last_edited > threshold]
    chosen.sort(key=lambda c: (c.created_at, c.id), reverse=bool(descending))
    return 200, {"campaigns": [c.summary() for c in _paginate(chosen, page)], "message": "success"}


def campaign_details(campaigns: Mapping[str, Campaign], query: Mapping[str, str]) -> Reply:
    """`GET /campaigns/details?campaign_id=`."""
    campaign = campaigns.get(query.get("campaign_id", ""))
    if campaign is None:
        return _error("campaign_id must be a string of the Campaign api identifier")
    post_launch_draft = _flag(query, "post_launch_draft_version")
    if isinstance(post_launch_draft, str):
        return _error(post_launch_draft)
    translatable = _flag(query, "include_has_translatable_content")
    if isinstance(translatable, str):
        return _error(translatable)
    return 200, campaign.details(post_launch_draft=post_launch_draft, translatable=translatable)
