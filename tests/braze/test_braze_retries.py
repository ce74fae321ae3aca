"""Retries and pacing that end in delivery: 5xx, dropped connections, 429s and tiny rate limits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import aclosing
from typing import Any

from braze_standin import QUICK, Reply, StandIn

from bctui.braze import BrazeClient, RetryPolicy, TrackResult, WaitEvent, WaitReason
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret


def _objects(count: int) -> list[dict[str, Any]]:
    return [{"external_id": f"user-{i}", "score": i, "tier": "gold"} for i in range(count)]


async def _send_all(
    client: BrazeClient, objects: list[dict[str, Any]], batch_size: int, concurrency: int
) -> list[tuple[list[Any], TrackResult]]:
    results = []
    stream = client.track_many(objects, batch_size=batch_size, concurrency=concurrency)
    async with aclosing(stream):
        async for item in stream:
            results.append(item)
    return results


def _delivered(results: list[tuple[list[Any], TrackResult]]) -> list[str]:
    return sorted(
        obj["external_id"] for batch, result in results if result.accepted for obj in batch
    )


def test_5xx_and_dropped_connections_are_retried_until_delivered(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(fault_500=0.3, fault_drop=0.2))
    objects = _objects(300)
    events: list[WaitEvent] = []

    async def scenario() -> tuple[list[tuple[list[Any], TrackResult]], int, int]:
        async with BrazeClient(
            box.braze_url,
            Secret(box.api_key),
            retry=RetryPolicy(max_attempts=10, base=0.01, cap=0.02),
            on_wait=events.append,
        ) as braze:
            results = await _send_all(braze, objects, batch_size=10, concurrency=6)
            return results, braze.stats.server_errors, braze.stats.transport_errors

    results, server_errors, transport_errors = asyncio.run(scenario())
    assert _delivered(results) == sorted(o["external_id"] for o in objects)
    stats = box.sim.stats
    assert stats["attributes_processed"] == 300
    assert server_errors == stats["faults"]["500"] > 0
    assert transport_errors == stats["faults"]["drop"] > 0
    reasons = {event.reason for event in events}
    assert reasons == {WaitReason.SERVER_ERROR, WaitReason.TRANSPORT}


def test_a_tiny_rate_limit_is_paced_by_the_headers_and_everything_arrives(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(track_rate_limit=(8, 1.0)))
    objects = _objects(200)  # 20 requests of 10: at least two windows of waiting
    events: list[WaitEvent] = []

    async def scenario() -> list[tuple[list[Any], TrackResult]]:
        async with BrazeClient(
            box.braze_url, Secret(box.api_key), retry=QUICK, on_wait=events.append
        ) as braze:
            return await _send_all(braze, objects, batch_size=10, concurrency=6)

    results = asyncio.run(scenario())
    assert _delivered(results) == sorted(o["external_id"] for o in objects)
    stats = box.sim.stats
    assert stats["attributes_processed"] == 200
    assert stats["requests"]["/users/track"]["201"] == 20
    # Paced by X-RateLimit-Remaining/-Reset, the client waits for each window instead of
    # running into the limit: no request was refused.
    assert stats["rate_limited"] == 0
    assert [e.reason for e in events].count(WaitReason.WINDOW) >= 2
    assert all(e.endpoint == "/users/track" and 0 < e.seconds <= 1.0 for e in events)


def test_injected_429s_pause_every_sender_and_everything_arrives(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    settings = SimulatorSettings(fault_429=0.3, track_rate_limit=(3000, 0.5))
    box = make_sandbox(users=0, settings=settings)
    objects = _objects(60)
    events: list[WaitEvent] = []

    async def scenario() -> tuple[list[tuple[list[Any], TrackResult]], int]:
        async with BrazeClient(
            box.braze_url, Secret(box.api_key), retry=QUICK, on_wait=events.append
        ) as braze:
            results = await _send_all(braze, objects, batch_size=10, concurrency=6)
            return results, braze.stats.rate_limited

    results, limited = asyncio.run(scenario())
    assert _delivered(results) == sorted(o["external_id"] for o in objects)
    assert box.sim.stats["attributes_processed"] == 60
    assert limited == box.sim.stats["faults"]["429"] > 0
    rate_limited = [e for e in events if e.reason is WaitReason.RATE_LIMITED]
    assert rate_limited and all("retry after" in e.detail for e in rate_limited)


def test_a_429_without_any_header_backs_off_and_retries(standin: StandIn) -> None:
    standin.queue(Reply(429, {"message": "Rate limit exceeded"}))
    standin.script = lambda seen: Reply(201, {"message": "success", "attributes_processed": 1})
    events: list[WaitEvent] = []

    async def call() -> TrackResult:
        async with BrazeClient(
            standin.url, Secret("k" * 20), retry=QUICK, on_wait=events.append
        ) as braze:
            return await braze.track(attributes=[{"external_id": "u1", "a": 1}])

    result = asyncio.run(call())
    assert result.accepted and result.attributes_processed == 1
    assert len(standin.seen) == 2
    assert [(e.reason, e.detail) for e in events] == [(WaitReason.RATE_LIMITED, "no header")]


def test_rate_limit_headers_reach_the_caller(sandbox: Sandbox) -> None:
    async def call() -> None:
        async with BrazeClient(sandbox.braze_url, Secret(sandbox.api_key), retry=QUICK) as braze:
            response = await braze.request("GET", "/segments/list", params={"page": 0})
            assert response.status == 200
            assert response.rate.limit == 250_000
            assert response.rate.remaining == 249_999
            assert response.rate.reset_in is not None and 0 < response.rate.reset_in <= 3600
            assert braze.pacer("/segments/list").remaining == 249_999

    asyncio.run(call())
