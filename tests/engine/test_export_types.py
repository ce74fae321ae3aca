"""Stable export types: each mapping sends one JSON type on every run, whatever the data.

Against the Braze simulator over real HTTP: the objects it received (`track_bodies`) and the
users it holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_helpers import CONNECTION, EVERYONE, Workspace, export_goal, fast_settings, member, source

from bctui.engine.runs import state as st
from bctui.sandbox import Sandbox


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace."""
    return make_sandbox(users=0, settings=fast_settings())


def typed(kind: str, braze: str, prop: str | None, type_: str | None = None) -> dict[str, str]:
    """An export mapping with an optional `type`."""
    out = source(kind, braze, prop)
    if type_ is not None:
        out["type"] = type_
    return out


def received(box: Sandbox) -> list[dict[str, Any]]:
    """Every attribute object the simulator received since the last call."""
    objects = [obj for body in box.sim.track_bodies or [] for obj in body["attributes"]]
    box.sim.track_bodies = []
    return objects


def json_types(objects: list[dict[str, Any]], attribute: str) -> set[str]:
    """The JSON types an attribute was sent as (null left out)."""
    names = {str: "string", int: "number", float: "number", bool: "boolean", list: "array"}
    return {names[type(o[attribute])] for o in objects if o.get(attribute) is not None}


def custom(box: Sandbox, external_id: str) -> dict[str, Any]:
    """A simulator user's custom attributes."""
    found = box.sim.user(external_id=external_id)
    assert found is not None, f"Braze has no user {external_id}"
    return dict(found["custom_attributes"])


def kept_types(ws: Workspace, goal: str = "export") -> dict[str, tuple[str, str]]:
    """The goal's kept types: Braze attribute → (property, type)."""
    with ws.store() as store:
        return st.export_types(store, st.goal_key(CONNECTION, goal))


def test_one_mapping_sends_one_json_type_across_runs_with_one_and_several_values(
    tmp_path: Path, box: Sandbox
) -> None:
    mappings = [typed("property", "bc_tags", "tags"), typed("property", "bc_score", "score"),
                typed("property", "bc_name", "name"), typed("property", "bc_vip", "vip")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)], [EVERYONE])
    ws.load([member("p1", ext="u1", tags="a", score=5, name="Ann", vip=True),
             member("p2", ext="u2", tags=["a", "b"], score="7", name="Bob", vip=False),
             member("p3", ext="u3", tags="c", score=2.5, name="Cy")])
    box.sim.track_bodies = []

    first = ws.run()

    assert first.state == "FINISHED", first.error
    objects = received(box)
    assert len(objects) == 3
    # Several tags in one profile: an array for every profile; numbers with numeric text: numbers.
    assert json_types(objects, "bc_tags") == {"array"}
    assert json_types(objects, "bc_score") == {"number"}
    assert json_types(objects, "bc_name") == {"string"}
    assert json_types(objects, "bc_vip") == {"boolean"}
    assert custom(box, "u1") == {"bc_tags": ["a"], "bc_score": 5, "bc_name": "Ann",
                                 "bc_vip": True}
    assert custom(box, "u2")["bc_score"] == 7 and custom(box, "u2")["bc_vip"] is False
    assert kept_types(ws) == {"bc_tags": ("tags", "array"), "bc_score": ("score", "number"),
                              "bc_name": ("name", "string"), "bc_vip": ("vip", "boolean")}
    assert "attribute types inferred" in first.log_path.read_text()

    # The data turns around: one tag where there were two, text where there were numbers.
    ws.load([{"_id": "p1", "tags": ["x", "y"], "score": "8"},
             {"_id": "p2", "tags": "b", "score": 9, "vip": "true"}])
    ws.load([{"_id": "p3", "tags": None, "name": None}], strategy="clear")
    second = ws.run()

    assert second.state == "FINISHED", second.error
    objects = received(box)
    assert len(objects) == 3
    assert json_types(objects, "bc_tags") == {"array"}
    assert json_types(objects, "bc_score") == {"number"}
    assert custom(box, "u1")["bc_tags"] == ["x", "y"] and custom(box, "u1")["bc_score"] == 8
    assert custom(box, "u2")["bc_tags"] == ["b"] and custom(box, "u2")["bc_vip"] is True
    # No value stays null, whatever the type: Braze removes the attribute.
    p3 = next(o for o in objects if o["external_id"] == "u3")
    assert p3["bc_tags"] is None and p3["bc_name"] is None
    assert "bc_tags" not in custom(box, "u3")
    assert "attribute types inferred" not in second.log_path.read_text()


def test_each_explicit_type(tmp_path: Path, box: Sandbox) -> None:
    mappings = [
        typed("property", "as_string", "n", "string"),
        typed("property", "joined", "tags", "string"),
        typed("property", "as_number", "text_number", "number"),
        typed("property", "as_boolean", "flag", "boolean"),
        typed("property", "as_time", "when", "time"),
        typed("property", "as_array", "one", "array"),
        typed("segments", "segs", None, "array"),
        typed("profile_id", "pid", None, "string"),
    ]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)], [EVERYONE])
    ws.load([
        member("p1", ext="u1", n=12, tags=["a", "b"], text_number="12", flag="yes",
               when="2025-11-11", one="x"),
        member("p2", ext="u2", n=1.5, tags="c", text_number="-1.5e2", flag=0,
               when="2025-11-11T10:00:00Z", one=3),
        member("p3", ext="u3", n="t", text_number=4, flag=True, when="2025-11-11 10:00:00+01:00"),
    ])

    result = ws.run()

    assert result.state == "FINISHED", result.error
    assert result.summary["goals"]["export"]["failed"] == 0
    assert custom(box, "u1") == {
        "as_string": "12", "joined": "a, b", "as_number": 12, "as_boolean": True,
        "as_time": "2025-11-11", "as_array": ["x"], "segs": ["everyone"], "pid": "p1"}
    assert custom(box, "u2") == {
        "as_string": "1.5", "joined": "c", "as_number": -150.0, "as_boolean": False,
        "as_time": "2025-11-11T10:00:00Z", "as_array": [3], "segs": ["everyone"], "pid": "p2"}
    u3 = custom(box, "u3")
    assert u3["as_string"] == "t" and u3["as_number"] == 4 and u3["as_boolean"] is True
    assert u3["as_time"] == "2025-11-11 10:00:00+01:00" and "as_array" not in u3
    # An explicit type is kept too, so taking it out of the config later keeps sending it.
    assert kept_types(ws)["as_number"] == ("text_number", "number")


def test_a_value_that_cannot_convert_is_a_per_profile_error(tmp_path: Path,
                                                            box: Sandbox) -> None:
    mappings = [typed("property", "bc_score", "score", "number"),
                typed("property", "bc_since", "since", "time"),
                typed("property", "bc_name", "name")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)], [EVERYONE])
    ws.load([member(f"p{i}", ext=f"u{i}", score=i, since="2024-01-01", name=f"n{i}")
             for i in range(10)])
    ws.load([{"_id": "p3", "score": "lots"}, {"_id": "p6", "since": "yesterday"},
             {"_id": "p8", "since": "3001-01-01"}])
    box.sim.track_bodies = []

    result = ws.run()

    assert result.state == "FINISHED", result.error
    goal = result.summary["goals"]["export"]
    assert (goal["created"], goal["failed"]) == (7, 3)
    # The rest of the batch was delivered, in one request.
    assert len(box.sim.track_bodies or []) == 1
    assert {o["external_id"] for o in received(box)} == {f"u{i}" for i in (0, 1, 2, 4, 5, 7, 9)}
    failures = ws.failures()
    assert set(failures) == {"p3", "p6", "p8"}
    assert '"bc_score" as a number' in failures["p3"] and "'lots'" in failures["p3"]
    assert '"bc_since" as a time' in failures["p6"] and "'yesterday'" in failures["p6"]
    assert "ISO 8601" in failures["p6"] and "3000" in failures["p8"]
    log = result.log_path.read_text()
    assert "p3 not sent" in log and "retried next run" in log
    assert box.sim.user(external_id="u3") is None

    # Retried next run: still wrong, still rejected; fixed, delivered and no longer retried.
    again = ws.run()
    assert again.summary["goals"]["export"]["failed"] == 3
    assert ws.failure_attempts()["p3"][1] == 2
    ws.load([{"_id": "p3", "score": "30"}, {"_id": "p6", "since": "2024-02-02T08:00:00"},
             {"_id": "p8", "since": "2030-01-01"}])
    fixed = ws.run()
    assert fixed.summary["goals"]["export"]["failed"] == 0
    assert ws.failures() == {}
    assert custom(box, "u3")["bc_score"] == 30
    assert custom(box, "u6")["bc_since"] == "2024-02-02T08:00:00"


def test_the_inferred_type_survives_a_new_run_in_a_new_process(tmp_path: Path,
                                                                 box: Sandbox) -> None:
    mappings = [typed("property", "bc_tags", "tags"), typed("property", "bc_code", "code")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings)], [EVERYONE])
    ws.load([member(f"p{i}", ext=f"u{i}", tags=f"t{i}", code=i) for i in range(3)])

    dry = ws.cli("run", CONNECTION, "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert kept_types(ws) == {}  # a dry run decides without keeping

    first = ws.cli("run", CONNECTION, "--json")
    assert first.returncode == 0, first.stderr
    assert kept_types(ws) == {"bc_tags": ("tags", "string"), "bc_code": ("code", "number")}
    assert custom(box, "u0") == {"bc_tags": "t0", "bc_code": 0}

    # Later data that would infer otherwise: the kept types stay; a profile with several values
    # for the scalar mapping is rejected, with the fix named; the others are delivered.
    ws.load([{"_id": "p1", "tags": ["a", "b"]}, {"_id": "p2", "tags": "z", "code": "12"},
             member("p3", ext="u3", tags="new", code="0042")])
    second = ws.cli("run", CONNECTION, "--json")
    assert json.loads(second.stdout)["state"] == "FINISHED", second.stderr
    goal = json.loads(second.stdout)["goals"]["export"]
    assert (goal["created"], goal["updated"], goal["failed"]) == (1, 1, 1)
    assert kept_types(ws) == {"bc_tags": ("tags", "string"), "bc_code": ("code", "number")}
    assert custom(box, "u2") == {"bc_tags": "z", "bc_code": 12}
    assert custom(box, "u3") == {"bc_tags": "new", "bc_code": 42}
    reason = ws.failures()["p1"]
    assert '"bc_tags" as a string' in reason and 'type = "array"' in reason
    assert "inferred" in reason

    # The config's type wins over the kept one: the rejected profile goes through.
    mappings[0]["type"] = "array"
    ws.write_config([export_goal(mappings=mappings)], [EVERYONE])
    third = ws.cli("run", CONNECTION, "--json")
    assert json.loads(third.stdout)["goals"]["export"]["failed"] == 0, third.stdout
    assert custom(box, "u1")["bc_tags"] == ["a", "b"]
    assert kept_types(ws)["bc_tags"] == ("tags", "array")


def test_inference_reads_only_the_goal_segment(tmp_path: Path, box: Sandbox) -> None:
    vip = {"name": "vip", "match": "all", "rules": [{"property": "vip", "op": "eq",
                                                     "value": "yes"}]}
    mappings = [typed("property", "bc_tags", "tags"), typed("property", "bc_n", "n"),
                typed("property", "bc_flag", "flag"), typed("property", "bc_zip", "zip"),
                typed("property", "bc_none", "absent")]
    ws = Workspace.create(tmp_path, box, [export_goal(mappings=mappings, segment="vip")],
                          [EVERYONE, vip])
    ws.load([member("p1", ext="u1", vip="yes", tags="a", n=1, flag="true", zip="01234"),
             member("p2", ext="u2", vip="yes", tags="b", n="2", flag="false", zip="2"),
             # Outside the segment: its several tags and its text do not count.
             member("p3", ext="u3", tags=["c", "d"], n="many", flag="maybe")])

    result = ws.run()

    assert result.state == "FINISHED", result.error
    # Numeric text counts as a number only beside real numbers: zip codes stay text.
    assert kept_types(ws) == {"bc_tags": ("tags", "string"), "bc_n": ("n", "number"),
                              "bc_flag": ("flag", "boolean"), "bc_zip": ("zip", "string")}
    assert custom(box, "u2") == {"bc_tags": "b", "bc_n": 2, "bc_flag": False, "bc_zip": "2"}
