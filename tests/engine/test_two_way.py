"""Two-way sync without echoes: an import and an export of one connection over the same fields,
against the simulator (its /users/track bodies and its data-point count)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from run_helpers import (
    Workspace,
    braze_segment_id,
    braze_track,
    braze_users,
    export_goal,
    ident,
    import_goal,
    mapping,
    member,
    source,
)

from bctui.engine.models import BrazeSettings, ImportGoal
from bctui.engine.runs.describe import short_counts
from bctui.engine.runs.echo import braze_attribute, config_warnings, two_way_fields
from bctui.engine.runs.events import GoalFinished, LogLine
from bctui.engine.runs.runner import RunResult
from bctui.engine.secrets import SecretsFile
from bctui.sandbox import Sandbox, SimulatorSettings

IMPORTED = [
    mapping("first_name", "first"),
    mapping("custom_attributes.color", "color"),
    mapping("custom_attributes.tier", "tier"),  # only imported: plain `set`
]
EXPORTED = [
    source("property", "first_name", "first"),
    source("property", "color", "color"),
    source("property", "home_city", "city"),  # only exported
]


@pytest.fixture
def box(make_sandbox: Callable[..., Sandbox]) -> Sandbox:
    """Two Braze users, exports that arrive at once, every /users/track body kept."""
    sandbox = make_sandbox(users=0, settings=SimulatorSettings(
        export_delay_seconds=0.05, export_file_interval=0.05))
    braze_track(sandbox, [
        {"external_id": "u1", "first_name": "Ann", "color": "red", "tier": "gold"},
        {"external_id": "u2", "first_name": "Bob", "color": "blue", "tier": "silver"},
    ])
    sandbox.sim.track_bodies = []
    return sandbox


def two_way(tmp_path: Path, box: Sandbox, imported: list[dict[str, str]] = IMPORTED,
            exported: list[dict[str, str]] = EXPORTED) -> Workspace:
    """A connection that imports the Braze users and exports the profiles back."""
    goals = [import_goal(braze_segment_id(box, "All Users"), mappings=imported),
             export_goal(mappings=exported)]
    ws = Workspace.create(tmp_path, box, goals)
    ws.load([member("p1", ext="u1", city="Paris"), member("p2", ext="u2", city="Rome")])
    return ws


def sent(box: Sandbox) -> list[dict[str, Any]]:
    """The attribute objects Braze received since the last call, and forget them."""
    bodies, box.sim.track_bodies = box.sim.track_bodies or [], []
    return sorted((obj for body in bodies for obj in body.get("attributes", [])),
                  key=lambda obj: str(obj.get("external_id") or obj.get("email")))


def run(ws: Workspace, box: Sandbox, **options: Any) -> tuple[RunResult, int]:
    """Run the connection; its result and the data points the simulator counted meanwhile."""
    before = box.sim.stats["data_points"]
    result = ws.run(**options)
    assert result.state == "FINISHED", result.error
    return result, box.sim.stats["data_points"] - before


def goal(result: RunResult, name: str) -> dict[str, Any]:
    """One goal of a run summary."""
    found: dict[str, Any] = result.summary["goals"][name]
    return found


def props(ws: Workspace, pid: str) -> dict[str, list[Any]]:
    """One profile's properties."""
    found: dict[str, list[Any]] = ws.profiles()[pid]["properties"]
    return found


def warnings(ws: Workspace, result: RunResult) -> list[str]:
    """The run's warning lines."""
    return [e.message for e in ws.events(result.run_id)
            if isinstance(e, LogLine) and e.level == "warning"]


def test_run_twice_without_changes_sends_nothing_the_second_time(
        tmp_path: Path, box: Sandbox) -> None:
    ws = two_way(tmp_path, box)

    first, points = run(ws, box)

    # The import brought Braze's values in; the export sent only what Braze did not have.
    assert props(ws, "p1")["first"] == ["Ann"] and props(ws, "p2")["color"] == ["blue"]
    assert sent(box) == [
        {"external_id": "u1", "home_city": "Paris", "_update_existing_only": False},
        {"external_id": "u2", "home_city": "Rome", "_update_existing_only": False},
    ]
    assert goal(first, "export")["data_points"] == points == 2
    assert first.summary["data_points"] == points
    # Two profiles × two two-way fields that Braze already held.
    assert goal(first, "import")["echo_suppressed"] == 4
    finished = [e for e in ws.events(first.run_id)
                if isinstance(e, GoalFinished) and e.goal == "import"]
    assert "4 echoes suppressed" in short_counts(finished[0].counts, 0)

    second, points = run(ws, box)

    assert sent(box) == []
    assert points == 0 and second.summary["data_points"] == 0
    assert goal(second, "export")["checked"] == 0
    assert goal(second, "import")["updated"] == 0 and goal(second, "import")["unchanged"] == 2
    assert goal(second, "import")["echo_suppressed"] == 0


def test_export_identified_otherwise_than_the_import(tmp_path: Path, box: Sandbox) -> None:
    braze_track(box, [{"external_id": "u1", "email": "ann@example.com"},
                      {"external_id": "u2", "email": "bob@example.com"}])
    sent(box)
    goals = [import_goal(braze_segment_id(box, "All Users"), mappings=IMPORTED),
             export_goal(mappings=EXPORTED, identifiers=[[ident("email", "mail")]])]
    ws = Workspace.create(tmp_path, box, goals)
    ws.load([member("p1", ext="u1", mail="ann@example.com", city="Paris"),
             member("p2", ext="u2", mail="someone@else.example", city="Rome")])

    result, points = run(ws, box)

    # The import asked for e-mail addresses too: p1's export names the user read, so Braze's
    # values are known for it; p2's names another user, who gets every value.
    assert sent(box) == [
        {"email": "ann@example.com", "home_city": "Paris", "_update_existing_only": False},
        {"email": "someone@else.example", "first_name": "Bob", "color": "blue",
         "home_city": "Rome", "_update_existing_only": False},
    ]
    assert goal(result, "import")["echo_suppressed"] == 2
    assert goal(result, "export")["data_points"] == points == 4


def test_dry_run_counts_suppressed_echoes_and_writes_nothing(
        tmp_path: Path, box: Sandbox) -> None:
    ws = two_way(tmp_path, box)

    result, points = run(ws, box, dry_run=True)

    assert goal(result, "import")["echo_suppressed"] == 4
    assert points == 0 and sent(box) == []
    assert ws.engine_rows("export_sent") == 0
    assert "first" not in props(ws, "p1")


def test_local_change_is_exported_and_braze_change_is_imported_not_sent_back(
        tmp_path: Path, box: Sandbox) -> None:
    ws = two_way(tmp_path, box)
    run(ws, box)
    sent(box)
    ws.load([{"_id": "p1", "color": "green", "tier": "local"}])
    braze_track(box, [{"external_id": "u2", "first_name": "Robert"}])
    sent(box)

    result, points = run(ws, box)

    # Braze's unchanged red does not overwrite the local green; Braze's new name comes in.
    assert props(ws, "p1")["color"] == ["green"]
    assert props(ws, "p2")["first"] == ["Robert"]
    # A field that is only imported keeps `set`'s plain meaning: Braze's value replaces it.
    assert props(ws, "p1")["tier"] == ["gold"]
    assert sent(box) == [
        {"external_id": "u1", "color": "green", "_update_existing_only": False}]
    assert goal(result, "export")["data_points"] == points == 1
    user = box.sim.user(external_id="u1")
    assert user is not None and user["custom_attributes"]["color"] == "green"
    assert not warnings(ws, result)

    # What was just sent is what Braze holds: the next run reads it back and sends nothing.
    again, points = run(ws, box)
    assert sent(box) == [] and points == 0
    assert props(ws, "p1")["color"] == ["green"]
    assert goal(again, "import")["updated"] == 0


def test_both_sides_changed_braze_wins_and_the_log_says_so(
        tmp_path: Path, box: Sandbox) -> None:
    ws = two_way(tmp_path, box)
    run(ws, box)
    ws.load([{"_id": "p1", "first": "Annie"}])
    braze_track(box, [{"external_id": "u1", "first_name": "Anna"}])
    sent(box)

    result, points = run(ws, box)

    assert props(ws, "p1")["first"] == ["Anna"]
    assert sent(box) == [] and points == 0
    lines = [line for line in warnings(ws, result) if "changed both" in line]
    assert len(lines) == 1, warnings(ws, result)
    assert lines[0].startswith("1 two-way value changed both") and "p1" in lines[0]


def test_a_one_way_import_keeps_its_plain_meaning(tmp_path: Path, box: Sandbox) -> None:
    ws = Workspace.create(tmp_path, box, [
        import_goal(braze_segment_id(box, "All Users"), mappings=IMPORTED)])
    ws.load([member("p1", ext="u1")])
    run(ws, box)
    ws.load([{"_id": "p1", "color": "green"}])

    result, _ = run(ws, box)

    assert props(ws, "p1")["color"] == ["red"]  # `set`: Braze's value, changed or not
    assert goal(result, "import")["updated"] == 1
    assert "echo_suppressed" not in goal(result, "import")
    assert ws.engine_rows("export_sent") == 0


def test_sum_or_add_both_ways_is_warned_with_the_fix(
        tmp_path: Path, box: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = two_way(tmp_path, box, imported=[mapping("custom_attributes.pts", "points", "sum")],
                 exported=[source("property", "pts", "points")])
    config, secrets = ws.config, SecretsFile(ws.paths.secrets)

    found = config_warnings(config, secrets)

    assert len(found) == 1
    assert 'strategy "sum"' in found[0] and '"pts"' in found[0] and 'fix: use strategy "set"' in (
        found[0])
    validated = ws.cli("validate")
    assert validated.returncode == 0, validated.stderr
    assert "1 warning" in validated.stdout and 'strategy "sum"' in validated.stderr
    # The same attribute of another workspace (another key) is no two-way field.
    conn = config.connections[0]
    monkeypatch.setenv("OTHER_BRAZE_KEY", "another-workspace")
    other = dataclasses.replace(conn, name="other", braze=BrazeSettings(
        conn.braze.endpoint, "env:OTHER_BRAZE_KEY"), goals=conn.goals[1:])
    importer = conn.goals[0]
    assert isinstance(importer, ImportGoal)
    alone = dataclasses.replace(conn, goals=conn.goals[:1])
    assert two_way_fields(alone, importer, [alone, other], secrets) == []
    monkeypatch.setenv("OTHER_BRAZE_KEY", box.api_key)  # the same key: the same workspace
    assert len(two_way_fields(alone, importer, [alone, other], secrets)) == 1

    # Run as it is, the sum still does not grow by itself: Braze's value is added once, and
    # not again while Braze keeps the total it was sent.
    braze_track(box, [{"external_id": "u1", "pts": 10}])
    ws.load([{"_id": "p1", "points": 5}])
    sent(box)
    result, _ = run(ws, box)
    assert any('strategy "sum"' in line for line in warnings(ws, result))
    assert props(ws, "p1")["points"] == [15]
    assert sent(box) == [{"external_id": "u1", "pts": 15, "_update_existing_only": False}]
    run(ws, box)
    assert props(ws, "p1")["points"] == [15] and sent(box) == []


def test_import_field_paths_name_the_attribute_an_export_sets() -> None:
    assert braze_attribute("custom_attributes.color") == "color"
    assert braze_attribute("first_name") == "first_name"
    assert braze_attribute("custom_attributes.address.city") is None  # nested: never exported
    assert braze_attribute("custom_attributes.first_name") is None  # /users/track: standard
    assert braze_attribute("braze_id") is None and braze_attribute("devices") is None


def _crash_world(root: Path, box: Sandbox) -> Workspace:
    """Thirty Braze users in three export files, profiles for them with local values."""
    braze_track(box, [{"external_id": f"u{i:02d}", "first_name": f"F{i}", "color": f"c{i % 4}"}
                      for i in range(30)])
    box.sim.track_bodies = []
    goals = [import_goal(braze_segment_id(box, "All Users"), mappings=IMPORTED[:2]),
             export_goal(mappings=EXPORTED)]
    ws = Workspace.create(root, box, goals)
    ws.load(member(f"p{i:02d}", ext=f"u{i:02d}", city=f"town{i}") for i in range(30))
    return ws


def _outcome(ws: Workspace, box: Sandbox) -> tuple[Any, ...]:
    """Both sides, and what each export goal record holds, for comparing two histories."""
    with ws.store() as store:
        rows = store.query("SELECT profile_id, attrs, ids FROM export_sent ORDER BY 1").fetchall()
    received = sorted(str(sorted(obj.items())) for obj in sent(box))
    return ws.properties_by("ext"), braze_users(box), [tuple(r) for r in rows], received


@pytest.mark.parametrize("point", ["import.before_commit:2", "import.file_applied:2"])
def test_killed_during_a_two_way_import_then_resumed(
        point: str, tmp_path: Path, make_sandbox: Callable[..., Sandbox]) -> None:
    def sandbox() -> Sandbox:
        return make_sandbox(users=0, settings=SimulatorSettings(
            export_delay_seconds=0.05, export_file_interval=0.05, export_file_users=10))

    reference_box = sandbox()
    reference = _crash_world(tmp_path / "reference", reference_box)
    assert ws_run_cli(reference).returncode == 0
    expected = _outcome(reference, reference_box)
    box = sandbox()
    ws = _crash_world(tmp_path / "crashed", box)

    assert ws_run_cli(ws, crash_at=point).returncode == -9
    assert ws_run_cli(ws).returncode == 0

    # The Braze values read and the values sent are those of one uninterrupted run.
    assert _outcome(ws, box) == expected
    assert len(expected[3]) == 30  # one object per profile: its home_city only
    _, points = run(ws, box)
    assert sent(box) == [] and points == 0


def ws_run_cli(ws: Workspace, crash_at: str | None = None) -> Any:
    """`bctui run c --json`, optionally dying at a crash point."""
    return ws.cli("run", "c", "--json", env={"BCTUI_CRASH_AT": crash_at} if crash_at else None)
