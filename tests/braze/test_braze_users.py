"""/users/track (partial failures by index, batching, concurrent sending) and segment exports."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any

import pytest
from braze_standin import QUICK, Reply, StandIn

from bctui.braze import (
    BrazeClient,
    BrazeHttpError,
    MissingPermission,
    TrackError,
    TrackResult,
    batches,
)
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret


def _client(box: Sandbox, key: str | None = None, **kwargs: Any) -> BrazeClient:
    return BrazeClient(box.braze_url, Secret(key or box.api_key), retry=QUICK, **kwargs)


def _user(box: Sandbox, external_id: str) -> dict[str, Any] | None:
    return box.sim.user(external_id=external_id)


def test_partial_failures_are_attributed_by_index(sandbox: Sandbox) -> None:
    attributes = [
        {"external_id": "ok-0", "tier": "gold"},
        {"tier": "no identifier"},
        {"external_id": "ok-2", "tier": "silver"},
        {"external_id": "bad-3", "email_subscribe": "maybe"},
        {"external_id": "ok-4", "tier": "bronze"},
    ]
    events = [
        {"external_id": "ok-0", "name": "viewed", "time": "2024-01-01T00:00:00Z"},
        {"external_id": "ok-0", "time": "2024-01-01T00:00:00Z"},
    ]

    async def call() -> TrackResult:
        async with _client(sandbox) as braze:
            return await braze.track(attributes=attributes, events=events)

    result = asyncio.run(call())
    assert result.status == 201 and result.accepted
    assert result.attributes_processed == 3
    assert result.events_processed == 1
    assert result.purchases_processed is None
    failed = result.failures("attributes", len(attributes))
    assert sorted(failed) == [1, 3]
    assert "required" in failed[1]
    assert "email_subscribe" in failed[3]
    assert sorted(result.failures("events", len(events))) == [1]
    assert result.unattributed() == []
    # What Braze took is really there, what it refused is not.
    assert _user(sandbox, "ok-2") is not None
    assert _user(sandbox, "bad-3") is None


def test_a_400_with_errors_is_a_result_where_every_object_failed(sandbox: Sandbox) -> None:
    attributes = [{"tier": "a"}, {"tier": "b"}, {"external_id": "x", "email_subscribe": "??"}]

    async def call() -> TrackResult:
        async with _client(sandbox) as braze:
            return await braze.track(attributes=attributes)

    result = asyncio.run(call())
    assert result.status == 400 and not result.accepted
    assert result.attributes_processed is None
    assert [(e.index, e.input_array) for e in result.errors] == [
        (0, "attributes"), (1, "attributes"), (2, "attributes"),
    ]  # fmt: skip
    assert sorted(result.failures("attributes", 3)) == [0, 1, 2]
    assert result.failures("events", 0) == {}


def test_a_400_with_errors_for_some_objects_fails_the_others_with_the_message(
    standin: StandIn,
) -> None:
    message = "Valid data must be provided in the 'attributes', 'events', or 'purchases' fields."
    standin.queue(
        Reply(400, {"message": message, "errors": [{"type": "bad", "input_array": "attributes",
                                                    "index": "1"}]})
    )  # fmt: skip

    async def call() -> TrackResult:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            return await braze.track(attributes=[{"external_id": "a"}, {"external_id": "b"}])

    result = asyncio.run(call())
    assert result.failures("attributes", 2) == {0: message, 1: "bad"}


def test_error_items_in_unexpected_shapes_are_kept(standin: StandIn) -> None:
    standin.queue(
        Reply(201, {"message": "success", "errors": [
            {"type": "no array named", "index": 0},
            "a bare string",
            {"code": "EMAIL_BAD_FORMAT", "input_array": "attributes", "index": 1},
            {"type": "out of range", "input_array": "attributes", "index": 9},
        ]})
    )  # fmt: skip

    async def call() -> TrackResult:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            return await braze.track(attributes=[{"external_id": "a"}, {"external_id": "b"}])

    result = asyncio.run(call())
    # With only `attributes` sent, an item that names no array can only mean that one.
    assert result.errors[0] == TrackError(0, "attributes", "no array named")
    assert result.errors[1] == TrackError(None, None, "a bare string")
    assert result.failures("attributes", 2) == {0: "no array named", 1: "EMAIL_BAD_FORMAT"}
    assert result.unattributed() == [TrackError(None, None, "a bare string")]
    assert result.attributes_processed is None


def test_track_refuses_more_than_75_objects_and_nothing(sandbox: Sandbox) -> None:
    async def call(**arrays: list[dict[str, Any]]) -> None:
        async with _client(sandbox) as braze:
            await braze.track(**arrays)

    with pytest.raises(ValueError, match="at most 75"):
        asyncio.run(
            call(attributes=[{"external_id": "a"}] * 40, events=[{"external_id": "a"}] * 36)
        )
    with pytest.raises(ValueError, match="at least one"):
        asyncio.run(call())
    assert sandbox.sim.stats["requests"] == {}


def test_batches_splits_lazily() -> None:
    assert list(batches(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batches([], 75)) == []
    assert [len(b) for b in batches(iter(range(151)))] == [75, 75, 1]
    with pytest.raises(ValueError):
        list(batches([1], 0))


def test_track_many_delivers_every_object_once(sandbox: Sandbox) -> None:
    objects = [{"external_id": f"many-{i}", "n": i} for i in range(1000)]

    async def call() -> list[tuple[list[Any], TrackResult]]:
        out = []
        async with _client(sandbox) as braze:
            stream = braze.track_many(objects, concurrency=5)
            async with aclosing(stream):
                async for item in stream:
                    out.append(item)
        return out

    results = asyncio.run(call())
    assert [len(batch) for batch, _ in sorted(results, key=lambda r: r[0][0]["n"])] == [75] * 13 + [
        25
    ]
    assert all(result.accepted and not result.errors for _, result in results)
    sent = sorted(obj["n"] for batch, _ in results for obj in batch)
    assert sent == list(range(1000))
    assert sandbox.sim.stats["attributes_processed"] == 1000
    assert _user(sandbox, "many-999") is not None


def test_track_many_takes_an_async_iterable(sandbox: Sandbox) -> None:
    async def source() -> AsyncIterator[dict[str, Any]]:
        for i in range(160):
            yield {"external_id": f"async-{i}"}

    async def call() -> list[int]:
        async with _client(sandbox) as braze:
            stream = braze.track_many(source(), batch_size=50)
            async with aclosing(stream):
                return [len(batch) async for batch, _ in stream]

    assert sorted(asyncio.run(call())) == [10, 50, 50, 50]


class Batch(list[dict[str, Any]]):
    """A caller's batch that carries its own bookkeeping."""

    def __init__(self, profile_ids: list[str]) -> None:
        super().__init__({"external_id": pid} for pid in profile_ids)
        self.profile_ids = profile_ids


def test_track_batches_hands_back_the_callers_own_batch(sandbox: Sandbox) -> None:
    sent = [Batch([f"p{i}-{j}" for j in range(3)]) for i in range(4)]

    async def call() -> list[Batch]:
        async with _client(sandbox) as braze:
            stream = braze.track_batches(sent, concurrency=2)
            async with aclosing(stream):
                return [batch async for batch, _ in stream]

    received = asyncio.run(call())
    assert sorted(map(id, received)) == sorted(map(id, sent))
    assert all(isinstance(batch, Batch) for batch in received)


def test_track_many_stops_on_a_fatal_error_after_yielding_what_arrived(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0)
    key = box.key_with("segments.list")  # no users.track
    objects = [{"external_id": f"x-{i}"} for i in range(300)]
    yielded: list[Any] = []

    async def call() -> None:
        async with _client(box, key) as braze:
            stream = braze.track_many(objects, concurrency=3)
            async with aclosing(stream):
                async for item in stream:
                    yielded.append(item)

    with pytest.raises(MissingPermission):
        asyncio.run(call())
    assert yielded == []
    # The source is read lazily: at most one round of batches went out.
    assert sum(box.sim.stats["requests"]["/users/track"].values()) <= 3


def test_leaving_track_many_early_cancels_what_is_in_flight(
    make_sandbox: Callable[..., Sandbox],
) -> None:
    box = make_sandbox(users=0, settings=SimulatorSettings(latency_ms=50))
    objects = ({"external_id": f"early-{i}"} for i in range(75 * 100))

    async def call() -> int:
        seen = 0
        async with _client(box) as braze:
            stream = braze.track_many(objects, concurrency=4)
            async with aclosing(stream):
                async for _ in stream:
                    seen += 1
                    if seen == 2:
                        break
            assert braze.pacer("/users/track").in_flight == 0
        return seen

    assert asyncio.run(call()) == 2
    # Only the first few rounds were ever read from the (lazy) source.
    assert next(objects)["external_id"].startswith("early-")
    assert sum(box.sim.stats["requests"]["/users/track"].values()) < 10


def test_export_segment_starts_an_export(make_sandbox: Callable[..., Sandbox]) -> None:
    box = make_sandbox(users=30, settings=SimulatorSettings(export_delay_seconds=0))

    async def call() -> tuple[str, Any]:
        async with _client(box) as braze:
            segment = (await braze.list_segments())[0]
            return segment.id, await braze.export_segment(
                segment.id,
                ["external_id", "email", "custom_attributes"],
                custom_attributes_to_export=["loyalty_points"],
                output_format="zip",
            )

    segment_id, started = asyncio.run(call())
    assert started.url is None
    assert started.message == "success"
    assert box.sim.wait_for_exports(timeout=30)
    (job,) = box.sim.exports
    assert job.object_prefix == started.object_prefix
    assert job.segment_id == segment_id


def test_export_segment_validates_its_arguments(sandbox: Sandbox) -> None:
    async def call(*args: Any, **kwargs: Any) -> None:
        async with _client(sandbox) as braze:
            await braze.export_segment(*args, **kwargs)

    with pytest.raises(ValueError, match="segment_id"):
        asyncio.run(call("", ["email"]))
    with pytest.raises(ValueError, match="fields_to_export"):
        asyncio.run(call("s", []))
    with pytest.raises(ValueError, match="fields_to_export"):
        asyncio.run(call("s", "email"))
    with pytest.raises(ValueError, match="output_format"):
        asyncio.run(call("s", ["email"], output_format="csv"))


def test_export_body_and_an_answer_without_s3(standin: StandIn) -> None:
    standin.queue(Reply(201, {"url": "https://appboy-data-export.s3.amazonaws.com/x.zip",
                              "message": "success"}))  # fmt: skip

    async def call() -> None:
        async with BrazeClient(standin.url, Secret("k" * 20), retry=QUICK) as braze:
            await braze.export_segment(
                "seg-1", ["email"], callback_endpoint="https://hooks.example.com/braze"
            )

    with pytest.raises(BrazeHttpError) as caught:
        asyncio.run(call())
    assert "no Amazon S3 export bucket" in caught.value.message
    assert "Amazon S3" in caught.value.fix
    body = json.loads(standin.seen[0].body)
    assert body == {
        "segment_id": "seg-1",
        "fields_to_export": ["email"],
        "output_format": "gzip",
        "callback_endpoint": "https://hooks.example.com/braze",
    }


@pytest.mark.parametrize(("latency_ms", "low", "high"), [(2, 1, 24), (200, 150, 290)])
def test_requests_in_flight_follow_the_rate_limit_times_the_latency(
    make_sandbox: Callable[..., Sandbox], latency_ms: int, low: int, high: int
) -> None:
    # 3,000 requests / 3 s at 200 ms: 1,000/s × 0.2 s × 1.25 headroom = 250 in flight (sending
    # them takes a while in one process, so the peak may fall short); at 2 ms, a handful. Either
    # way neither the start (32) nor the cap (512).
    box = make_sandbox(users=0, settings=SimulatorSettings(latency_ms=latency_ms))
    batches = [[{"external_id": f"c-{i}"}] for i in range(700)]
    peaks: list[int] = []

    async def call() -> None:
        async with _client(box, max_connections=512) as braze:
            pacer = braze.pacer("/users/track")
            stream = braze.track_batches(batches, concurrency=512)
            async with aclosing(stream):
                async for _ in stream:
                    if pacer.latency is not None:
                        peaks.append(pacer.in_flight)

    asyncio.run(call())
    # The first round trip starts at 32; from the second on, the sizing holds.
    settled = peaks[100:]
    assert low <= max(settled) <= high, max(settled)
