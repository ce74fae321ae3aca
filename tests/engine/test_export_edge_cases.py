"""Braze's edge cases on export, against the simulator: a request refused without `errors[]`, and
the size limits the reference confirms (request body, external_id), checked before sending."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from run_helpers import Workspace, export_goal, fast_settings, ident, member, source

from bctui.braze import BadRequest, BrazeClient, RetryPolicy
from bctui.braze.users import MAX_BODY_BYTES, track
from bctui.engine.models import ExportGoal
from bctui.engine.runs.events import LogLine
from bctui.engine.runs.exporter import MappingPlan
from bctui.sandbox import Sandbox
from bctui.secret import Secret

NOTE = [source("property", "bc_note", "note")]
QUICK = RetryPolicy(max_attempts=2, base=0.01, cap=0.02)


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace that keeps every /users/track body."""
    sandbox = make_sandbox(users=0, settings=fast_settings())
    sandbox.sim.track_bodies = []
    return sandbox


def counts(result: Any, goal: str = "export") -> dict[str, int]:
    """The counts of one goal of a run summary."""
    keys = ("checked", "created", "updated", "unchanged", "skipped", "failed")
    return {k: result.summary["goals"][goal][k] for k in keys}


def warnings(ws: Workspace, run_id: str) -> list[str]:
    """The run log's warning lines."""
    return [e.message for e in ws.events(run_id) if isinstance(e, LogLine) and e.level == "warning"]


def sent_ids(box: Sandbox) -> list[str]:
    """The external ids of every attribute object the simulator received."""
    return [
        obj["external_id"]
        for body in box.sim.track_bodies or []
        for obj in body.get("attributes", [])
    ]


def statuses(box: Sandbox) -> dict[str, int]:
    """/users/track answers by HTTP status."""
    return dict(box.sim.stats["requests"].get("/users/track", {}))


def test_a_request_refused_without_errors_rejects_its_profiles_not_the_goal(
    tmp_path: Path, box: Sandbox
) -> None:
    # A workspace that takes fewer objects per request than bctui sends: every request gets
    # Braze's "Max Input Length Exceeded", a 400 that names no object.
    box.sim.configure(max_objects=5)
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=NOTE)])
    ws.load([member(f"p{i:03}", ext=f"u{i}", note=f"n{i}") for i in range(160)])

    first = ws.run()

    assert first.state == "FINISHED", first.error
    assert counts(first)["failed"] == 160 and counts(first)["created"] == 0
    assert statuses(box) == {"400": 3}
    failures = ws.failures()
    assert len(failures) == 160
    assert all(
        "Max Input Length Exceeded" in reason and "HTTP 400" in reason
        for reason in failures.values()
    )
    said = [line for line in warnings(ws, first.run_id) if "Max Input Length" in line]
    assert len(said) == 1, said  # once, not once per request
    assert "160" not in said[0] and "retried next run" in said[0]
    assert ws.watermark() == ws.max_seq()  # rejected is settled: they wait in the retry list

    box.sim.configure(max_objects=75)
    second = ws.run()

    assert second.state == "FINISHED", second.error
    assert counts(second)["created"] == 160 and counts(second)["failed"] == 0
    assert ws.failures() == {}
    assert box.sim.user(external_id="u42") is not None


def test_track_returns_a_whole_refusal_when_asked_and_raises_otherwise(box: Sandbox) -> None:
    box.sim.configure(max_objects=2)
    objects = [{"external_id": f"u{i}", "x": i} for i in range(3)]
    huge = [{"external_id": "big", "x": "y" * (4 * 1024 * 1024)}]  # over the simulator's 4 MiB

    async def call(attributes: list[dict[str, Any]], refusals: bool) -> Any:
        async with BrazeClient(box.braze_url, Secret(box.api_key), retry=QUICK) as braze:
            return await track(braze, attributes=attributes, refusals=refusals)

    refused = asyncio.run(call(objects, True))
    assert refused.status == 400 and refused.refused_whole
    assert "Max Input Length Exceeded" in refused.message
    assert set(refused.failures("attributes", size=3)) == {0, 1, 2}
    too_large = asyncio.run(call(huge, True))
    assert too_large.status == 413 and too_large.refused_whole
    with pytest.raises(BadRequest):
        asyncio.run(call(objects, False))


def test_a_request_over_the_body_limit_is_split(tmp_path: Path, box: Sandbox) -> None:
    # 75 objects of 60 kB: 4.5 MB in one request, which Braze (and the simulator) refuses.
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=NOTE)])
    ws.load([member(f"p{i:02}", ext=f"u{i}", note=f"{i:02}" + "é" * 30_000) for i in range(75)])

    result = ws.run()

    assert result.state == "FINISHED", result.error
    assert counts(result)["created"] == 75 and counts(result)["failed"] == 0
    assert statuses(box) == {"201": 2}
    bodies = box.sim.track_bodies or []
    assert all(len(orjson.dumps(body)) <= MAX_BODY_BYTES for body in bodies)
    assert sorted(sent_ids(box)) == sorted(f"u{i}" for i in range(75))
    stored = box.sim.user(external_id="u7")
    assert stored is not None and stored["custom_attributes"]["bc_note"].startswith("07é")


def test_an_object_alone_over_the_body_limit_is_rejected_naming_its_attribute(
    tmp_path: Path, box: Sandbox
) -> None:
    mappings = [*NOTE, source("property", "bc_name", "name")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)])
    ws.load(
        [
            member("p1", ext="u1", name="Ann", note="z" * (MAX_BODY_BYTES + 10)),
            member("p2", ext="u2", name="Bob", note="short"),
            member("p3", ext="u3", name="Cy"),
        ]
    )

    dry = ws.run(dry_run=True)
    assert counts(dry)["failed"] == 1 and statuses(box) == {}

    first = ws.run()

    assert first.state == "FINISHED", first.error
    assert counts(first)["failed"] == 1 and counts(first)["created"] == 2
    assert sorted(sent_ids(box)) == ["u2", "u3"]  # p1 never went out
    reason = ws.failures()["p1"]
    assert "'bc_note'" in reason and "4,000,000 bytes" in reason, reason
    assert any("p1" in line and "bc_note" in line for line in warnings(ws, first.run_id))

    ws.load([{"_id": "p1", "note": "now short"}])
    second = ws.run()

    assert counts(second)["failed"] == 0 and ws.failures() == {}
    stored = box.sim.user(external_id="u1")
    assert stored is not None and stored["custom_attributes"]["bc_note"] == "now short"


def test_an_external_id_over_987_bytes_is_rejected_before_sending(
    tmp_path: Path, box: Sandbox
) -> None:
    at_limit = "é" * 493 + "x"  # 987 bytes in UTF-8, 494 characters
    over = "x" * 988
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=NOTE)])
    ws.load(
        [
            member("p1", ext=over, note="a"),
            member("p2", ext=at_limit, note="b"),
            member("p3", ext="u3", note="c"),
        ]
    )

    result = ws.run()

    assert result.state == "FINISHED", result.error
    assert counts(result)["failed"] == 1 and counts(result)["created"] == 2
    assert over not in sent_ids(box)
    assert box.sim.user(external_id=at_limit) is not None  # Braze takes exactly 987 bytes
    reason = ws.failures()["p1"]
    assert "external_id" in reason and "988 bytes" in reason and "987" in reason, reason


def test_the_size_bound_is_never_below_the_object_sent(tmp_path: Path, box: Sandbox) -> None:
    # The export measures an object only when this bound says it may not fit: a bound below
    # the real size would let a request over 4 MB out.
    mappings = [
        source("property", "a", "name"),
        source("property", "b", "name"),  # one property, two attributes
        source("property", "c", "n"),
        source("profile_id", "pid"),
        source("segments", "segs"),
        source("interactions_viewed", "seen"),
        source("permission_level", "level"),
        source("static", "src", "bctui ✓"),
    ]
    identifiers = [[ident("external_id", "name")], [ident("user_alias", "alias", "lbl")]]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings, identifiers=identifiers)])
    ws.load(
        [
            member("p1", name="x", n=1),
            member("p2", name=["é" * 40, '\x01\x02"\\'], n=1e16, interactions=["i1", "ü"]),
            member("p\x03", alias="𝄞" * 30, n=[1.5, -2, 3e-7]),
            member("p4", name="12345678901234567890", n=1234567890123456789),
        ]
    )
    goal = ws.config.connections[0].goals[0]
    assert isinstance(goal, ExportGoal)
    plan = MappingPlan(goal.mappings, goal.identifiers)
    per_props, per_viewed, per_pid, fixed = plan.size_bound(["everyone", "a longer segment"])
    with ws.store() as store:
        rows = store.query("SELECT id, properties, interactions_viewed FROM profile").fetchall()
    assert len(rows) == 4
    for profile_id, props_json, viewed_json in rows:
        props = orjson.loads(props_json)
        ids = plan.identifiers(props)
        assert ids is not None
        segments = ["a longer segment", "everyone"]
        obj = plan.attributes(profile_id, props, 2, orjson.loads(viewed_json), segments)
        obj.update(ids)
        obj["_update_existing_only"] = True
        exact = len(orjson.dumps(obj)) + 1
        chars = len(props_json) if props_json.isascii() else 4 * len(props_json)
        viewed = len(viewed_json) if viewed_json.isascii() else 4 * len(viewed_json)
        bound = fixed + per_props * chars + per_viewed * viewed + per_pid * len(profile_id)
        assert bound >= exact, (profile_id, bound, exact)
