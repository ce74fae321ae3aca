"""The export sends exactly what it sent before it was optimised.

`data/export_payloads.json` holds every attribute object that bctui sent to the simulator for the
scenario below, recorded with the exporter as it was before the performance work (commit
c523311). The scenario covers a first export and a mixed delta: changed, emptied and unchanged
attributes, identifier switches, segment changes, permission drops, number types, new profiles
and a full resync. Objects are compared as orjson writes them (key order and number spelling
included), sorted, because concurrent batches arrive in any order.

Re-recorded once since (`BCTUI_RECORD_EXPORT_PAYLOADS=1 pytest` on this file)
for stable types (bctui/engine/runs/types.py), with only these values changed: `first_name` and
`bc_tags`, which some profiles hold several values of, are inferred as arrays, so a single value is
now a one-element array ("t1" → ["t1"]); `bc_score`, numbers with some numeric text, is inferred
as a number ("100" → 100). Every other attribute, and which attributes each object holds, stayed
byte for byte the same.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from run_helpers import (
    EVERYONE,
    VIP,
    Workspace,
    export_goal,
    fast_settings,
    ident,
    member,
    source,
)

from bctui.sandbox import Sandbox

GOLDEN = Path(__file__).parent / "data" / "export_payloads.json"

MAPPINGS = [
    source("property", "email", "email"),
    source("property", "first_name", "name"),
    source("property", "bc_tags", "tags"),
    source("property", "bc_score", "score"),
    source("property", "bc_ratio", "ratio"),
    source("property", "bc_code", "code"),
    source("profile_id", "bc_profile_id"),
    source("segments", "bc_segments"),
    source("interactions_viewed", "bc_interactions"),
    source("permission_level", "bc_permission"),
    source("static", "bc_source", "bctui"),
]
IDENTIFIERS = [[ident("external_id", "ext")], [ident("user_alias", "email", "email")]]


def first_profiles() -> list[dict[str, Any]]:
    """200 profiles: three batches of 75 and a short one, with every kind of value."""
    out = []
    for i in range(200):
        record: dict[str, Any] = {
            "email": f"user{i}@example.com",
            "name": f"Näme {i}" if i % 7 else ["First", "Second"],
            "tags": [f"t{i % 3}", f"t{i % 5}"] if i % 2 else f"t{i % 3}",
            "score": i * 3 if i % 4 else f"{i}",
            "ratio": i / 8,
            "code": {"k": i, "a": [1, 2]} if i % 9 == 0 else True,
        }
        if i % 6:
            record["ext"] = f"ext-{i:03d}"
        if i % 10 == 0:
            record["vip"] = "yes"
        level = "DO_NOT_TRACK" if i % 23 == 0 else ("ANONYMOUS" if i % 3 == 0 else "PERSONAL")
        interactions = [f"i{i % 4}", "i9"] if i % 5 == 0 else []
        out.append(member(f"p{i:03d}", level=level, interactions=interactions, **record))
    return out


def delta_profiles() -> list[dict[str, Any]]:
    """A mixed delta over the first 120 profiles, and 30 new ones."""
    out: list[dict[str, Any]] = []
    for i in range(0, 120):
        pid = f"p{i:03d}"
        match i % 8:
            case 0:
                out.append({"_id": pid, "score": i * 3 + 1})  # one attribute changed
            case 1:
                out.append({"_id": pid, "tags": None, "_clear": "tags"})  # emptied
            case 2:
                out.append({"_id": pid, "note": "not mapped"})  # touched, nothing mapped changed
            case 3:
                out.append({"_id": pid, "vip": "yes"})  # joins a segment
            case 4:
                out.append({"_id": pid, "ext": f"new-{i:03d}"})  # another Braze user now
            case 5:
                out.append({"_id": pid, "ratio": float(i * 3), "score": float(i)})  # 1 → 1.0
            case 6:
                out.append({"_id": pid, "_permission_level": "DO_NOT_TRACK"})
            case _:
                out.append({"_id": pid, "name": ["Only"], "_interactions_viewed": ["i7"]})
    for i in range(200, 230):
        out.append(member(f"p{i:03d}", ext=f"ext-{i:03d}", email=f"new{i}@example.com",
                          score=i, tags=["n"]))
    return out


def sent(box: Sandbox) -> list[str]:
    """Every attribute object received since the last call, as orjson text, sorted."""
    bodies = box.sim.track_bodies or []
    objects = [orjson.dumps(obj).decode() for body in bodies for obj in body["attributes"]]
    box.sim.track_bodies = []
    return sorted(objects)


def scenario(tmp_path: Path, box: Sandbox) -> dict[str, list[str]]:
    """Run the scenario; the objects each run sent."""
    goal = export_goal(mappings=MAPPINGS, identifiers=IDENTIFIERS)
    ws = Workspace.create(tmp_path, box, [goal], [EVERYONE, VIP])
    ws.load(first_profiles())
    box.sim.track_bodies = []
    runs: dict[str, list[str]] = {}
    assert ws.run().state == "FINISHED"
    runs["first"] = sent(box)
    clears = [r for r in delta_profiles() if r.pop("_clear", None)]
    ws.load([r for r in delta_profiles() if "_clear" not in r and r.get("tags", 0) is not None])
    ws.load([{"_id": r["_id"], "tags": None} for r in clears], strategy="clear")
    assert ws.run().state == "FINISHED"
    runs["delta"] = sent(box)
    assert ws.run().state == "FINISHED"
    runs["nothing changed"] = sent(box)
    assert ws.run(full=True).state == "FINISHED"
    runs["full"] = sent(box)
    return runs


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """An empty simulated workspace."""
    return make_sandbox(users=0, settings=fast_settings())


def test_the_export_sends_the_recorded_attributes_byte_for_byte(tmp_path: Path,
                                                                 box: Sandbox) -> None:
    runs = scenario(tmp_path, box)
    if os.environ.get("BCTUI_RECORD_EXPORT_PAYLOADS") == "1":  # only to create the file anew
        GOLDEN.write_text(orjson.dumps(runs, option=orjson.OPT_INDENT_2).decode() + "\n")
    expected = orjson.loads(GOLDEN.read_text())
    assert {name: len(objects) for name, objects in runs.items()} == {
        name: len(objects) for name, objects in expected.items()}
    assert runs == expected
