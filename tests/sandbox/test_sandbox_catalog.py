"""`/segments/list|details` and `/campaigns/list|details` against the reference (§9–12)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest

from bctui.sandbox import Sandbox


def all_pages(client: httpx.Client, path: str, key: str, **params: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    page = 0
    while True:
        response = client.get(path, params={"page": str(page), **params})
        assert response.status_code == 200
        batch = response.json()[key]
        items.extend(batch)
        if len(batch) < 100:
            return items
        page += 1


def test_segments_list_shape_and_pagination(sandbox: Sandbox, client: httpx.Client) -> None:
    first = client.get("/segments/list")
    assert first.status_code == 200
    body = first.json()
    assert body["message"] == "success"
    assert len(body["segments"]) == 100
    assert set(body["segments"][0]) == {"id", "name", "analytics_tracking_enabled", "tags"}
    everything = all_pages(client, "/segments/list", "segments")
    live = [s for s in sandbox.sim.catalog.segments if not s.archived]
    assert 100 < len(everything) == len(live)
    assert len({s["id"] for s in everything}) == len(everything)
    # archived segments are not listed
    archived = {s.id for s in sandbox.sim.catalog.segments if s.archived}
    assert archived and not archived & {s["id"] for s in everything}
    past_end = client.get("/segments/list", params={"page": "9"})
    assert past_end.json() == {"segments": [], "message": "success"}


def test_segments_list_sorts_by_creation_time(sandbox: Sandbox, client: httpx.Client) -> None:
    ascending = all_pages(client, "/segments/list", "segments")
    descending = all_pages(client, "/segments/list", "segments", sort_direction="desc")
    assert [s["id"] for s in descending] == [s["id"] for s in reversed(ascending)]
    created = {s.id: s.created_at for s in sandbox.sim.catalog.segments}
    stamps = [created[str(s["id"])] for s in ascending]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("params", [{"page": "-1"}, {"page": "one"}, {"sort_direction": "up"}])
def test_segments_list_refuses_bad_parameters(client: httpx.Client, params: dict[str, str]) -> None:
    response = client.get("/segments/list", params=params)
    assert response.status_code == 400
    assert next(iter(params)) in response.json()["message"]


def test_segment_details(sandbox: Sandbox, client: httpx.Client) -> None:
    segment = next(s for s in sandbox.sim.catalog.segments if s.name == "Loyalty: Gold")
    response = client.get("/segments/details", params={"segment_id": segment.id})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "message",
        "created_at",
        "updated_at",
        "name",
        "description",
        "text_description",
        "tags",
        "teams",
    }
    assert body["name"] == "Loyalty: Gold"
    assert body["message"] == "success"
    assert datetime.fromisoformat(body["created_at"]) <= datetime.fromisoformat(body["updated_at"])
    assert isinstance(body["tags"], list)


@pytest.mark.parametrize("params", [{}, {"segment_id": "no-such-segment"}])
def test_unknown_segment_details_is_400_naming_the_parameter(
    client: httpx.Client, params: dict[str, str]
) -> None:
    response = client.get("/segments/details", params=params)
    assert response.status_code == 400
    assert "segment_id" in response.json()["message"]


def test_campaigns_list_shape_archived_and_pagination(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    body = client.get("/campaigns/list").json()
    assert body["message"] == "success"
    assert set(body["campaigns"][0]) == {"id", "last_edited", "name", "is_api_campaign", "tags"}
    live = all_pages(client, "/campaigns/list", "campaigns")
    everything = all_pages(client, "/campaigns/list", "campaigns", include_archived="true")
    catalog = sandbox.sim.catalog.campaigns
    assert len(everything) == len(catalog) > 100
    assert len(live) == sum(not c.archived for c in catalog) > 100
    assert len(live) < len(everything)
    descending = all_pages(
        client, "/campaigns/list", "campaigns", include_archived="true", sort_direction="desc"
    )
    assert [c["id"] for c in descending] == [c["id"] for c in reversed(everything)]


def test_campaigns_list_filters_on_last_edit_time(sandbox: Sandbox, client: httpx.Client) -> None:
    catalog = sorted(sandbox.sim.catalog.campaigns, key=lambda c: c.last_edited)
    pivot = catalog[len(catalog) // 2].last_edited
    stamp = datetime.fromtimestamp(pivot, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    expected = {c.id for c in catalog if c.last_edited > pivot}
    params = {"include_archived": "true", "last_edit.time[gt]": stamp}
    found = {c["id"] for c in all_pages(client, "/campaigns/list", "campaigns", **params)}
    assert found == expected
    # the doc example's offset form: 5 hours behind UTC means 5 hours later in UTC
    local = datetime.fromtimestamp(pivot - 5 * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    params["last_edit.time[gt]"] = f"{local}-5:00"
    found = {c["id"] for c in all_pages(client, "/campaigns/list", "campaigns", **params)}
    assert found == expected
    bad = client.get("/campaigns/list", params={"last_edit.time[gt]": "last tuesday"})
    assert bad.status_code == 400
    assert "last_edit.time[gt]" in bad.json()["message"]


def test_campaign_details_messages_are_keyed_by_variation_id(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    campaign = next(c for c in sandbox.sim.catalog.campaigns if len(c.messages) > 1)
    response = client.get("/campaigns/details", params={"campaign_id": campaign.id})
    assert response.status_code == 200
    body = response.json()
    assert body["message"] == "success"
    for key in (
        "created_at",
        "updated_at",
        "archived",
        "draft",
        "enabled",
        "has_post_launch_draft",
        "name",
        "description",
        "schedule_type",
        "channels",
        "tags",
        "teams",
        "messages",
        "conversion_behaviors",
    ):
        assert key in body, key
    assert isinstance(body["messages"], dict)
    assert set(body["messages"]) == set(campaign.messages)
    for message in body["messages"].values():
        assert "channel" in message
    assert all("type" in b and "window" in b for b in body["conversion_behaviors"])


def test_campaign_details_optional_flags(sandbox: Sandbox, client: httpx.Client) -> None:
    campaign = next(c for c in sandbox.sim.catalog.campaigns if c.has_post_launch_draft)
    params = {"campaign_id": campaign.id}
    plain = client.get("/campaigns/details", params=params).json()
    draft = client.get(
        "/campaigns/details",
        params={
            **params,
            "post_launch_draft_version": "true",
            "include_has_translatable_content": "true",
        },
    ).json()
    assert plain["messages"] != draft["messages"]
    assert all("has_translatable_content" in m for m in draft["messages"].values())
    assert not any("has_translatable_content" in m for m in plain["messages"].values())


def test_unknown_campaign_details_is_400_naming_the_parameter(client: httpx.Client) -> None:
    response = client.get("/campaigns/details", params={"campaign_id": "nope"})
    assert response.status_code == 400
    assert "campaign_id" in response.json()["message"]
