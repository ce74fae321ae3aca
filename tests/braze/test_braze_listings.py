"""Segments and campaigns: every page, details, unknown ids, unexpected pagination."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from braze_standin import QUICK, Reply, Seen, StandIn

from bctui.braze import BrazeClient, NotFound, UnexpectedResponse
from bctui.sandbox import Sandbox
from bctui.secret import Secret


def _client(box: Sandbox) -> BrazeClient:
    return BrazeClient(box.braze_url, Secret(box.api_key), retry=QUICK)


def test_every_segment_over_several_pages(sandbox: Sandbox) -> None:
    async def call() -> Any:
        async with _client(sandbox) as braze:
            return await braze.list_segments(), await braze.list_segments(sort_direction="desc")

    oldest_first, newest_first = asyncio.run(call())
    listed = [s for s in sandbox.sim.catalog.segments if not s.archived]
    expected = sorted(listed, key=lambda s: s.created_at)
    assert len(expected) > 100  # the sandbox's catalog spans two pages
    assert [s.id for s in oldest_first] == [s.id for s in expected]
    assert [s.id for s in newest_first] == [s.id for s in reversed(expected)]
    assert all(s.name for s in oldest_first)
    assert sandbox.sim.stats["requests"]["/segments/list"] == {"200": 4}


def test_every_campaign_with_and_without_archived(sandbox: Sandbox) -> None:
    async def call() -> Any:
        async with _client(sandbox) as braze:
            return await braze.list_campaigns(), await braze.list_campaigns(include_archived=True)

    active, everything = asyncio.run(call())
    assert len(everything) > 100
    assert len({c.id for c in everything}) == len(everything)
    assert {c.id for c in active} < {c.id for c in everything}
    assert all(c.last_edited for c in everything)
    assert any(c.is_api_campaign for c in everything)


def test_segment_and_campaign_details(sandbox: Sandbox) -> None:
    async def call() -> Any:
        async with _client(sandbox) as braze:
            segment = (await braze.list_segments())[0]
            campaign = (await braze.list_campaigns())[0]
            return (
                segment,
                await braze.segment_details(segment.id),
                campaign,
                await braze.campaign_details(campaign.id),
            )

    segment, segment_details, campaign, campaign_details = asyncio.run(call())
    assert segment_details.id == segment.id and segment_details.name == segment.name
    assert segment_details.created_at and segment_details.updated_at
    assert campaign_details.id == campaign.id and campaign_details.name == campaign.name
    assert campaign_details.channels
    assert all(isinstance(key, str) for key in campaign_details.messages)
    assert campaign_details.archived is False


@pytest.mark.parametrize("what", ["segment", "campaign"])
def test_unknown_ids_are_not_found(sandbox: Sandbox, what: str) -> None:
    async def call() -> None:
        async with _client(sandbox) as braze:
            if what == "segment":
                await braze.segment_details("no-such-segment")
            else:
                await braze.campaign_details("no-such-campaign")

    with pytest.raises(NotFound) as caught:
        asyncio.run(call())
    assert f"{what} 'no-such-{what}'" in caught.value.message
    assert "current list" in caught.value.fix


def _page(seen: Seen) -> int:
    return int(seen.path.partition("page=")[2].partition("&")[0])


def test_unknown_fields_are_kept_and_a_short_page_ends_the_listing(standin: StandIn) -> None:
    def script(seen: Seen) -> Reply:
        page = _page(seen)
        count = 100 if page == 0 else 3
        items = [
            {"id": f"c{page}-{i}", "name": f"C {i}", "is_api_campaign": "true",
             "tags": ["a", 1, None], "new_field": page}
            for i in range(count)
        ]  # fmt: skip
        return Reply(200, {"campaigns": items, "message": "success"})

    standin.script = script

    async def call() -> Any:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            return await braze.list_campaigns(
                include_archived=True, last_edited_after="2024-01-01T00:00:00"
            )

    campaigns = asyncio.run(call())
    assert len(campaigns) == 103
    assert campaigns[0].is_api_campaign is True
    assert campaigns[0].tags == ("a", "1")
    assert campaigns[-1].raw == {"new_field": 1}
    assert len(standin.seen) == 2
    assert "include_archived=true" in standin.seen[0].path
    assert "last_edit.time%5Bgt%5D=2024-01-01T00%3A00%3A00" in standin.seen[0].path


def test_a_server_that_ignores_page_is_detected(standin: StandIn) -> None:
    items = [{"id": f"s{i}", "name": "S"} for i in range(100)]
    standin.script = lambda seen: Reply(200, {"segments": items, "message": "success"})

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.list_segments()

    with pytest.raises(UnexpectedResponse, match="repeats items"):
        asyncio.run(call())
    assert len(standin.seen) == 2


def test_a_listing_without_its_list_is_unexpected(standin: StandIn) -> None:
    standin.queue(Reply(200, {"message": "success"}))

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.list_segments()

    with pytest.raises(UnexpectedResponse, match="'segments'"):
        asyncio.run(call())
