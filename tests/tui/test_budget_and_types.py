"""Issue 11's settings in the UI: an export goal's and a connection's data-point budget (max data
points, when over budget) and each export mapping's type, set with keys, saved to
connections.toml and reloaded; bad values get a message under their field and leave the file as
it was; a run's details show a two-way import's suppressed echoes and a budget refusal's reason."""

from __future__ import annotations

import tomllib
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select, Static
from tui_helpers import TuiWorkspace, drive, sandbox_config, until

from bctui.engine.config import load_config
from bctui.engine.runs import state as st
from bctui.engine.runs.runner import RunOptions, run_connection
from bctui.sandbox import Sandbox
from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.app import BctuiApp
from bctui.tui.screens.connection import ConnectionScreen
from bctui.tui.screens.dry_run import DryRunScreen
from bctui.tui.screens.export_goal import ExportGoalScreen
from bctui.tui.screens.run_detail import RunDetailScreen
from bctui.tui.widgets.mapping_grid import MappingGrid

VIP = {"name": "vip", "match": "all", "rules": [{"property": "points", "op": "gte", "value": 10}]}
GOAL = "VIPs to Braze"


def export_config(box: Sandbox, *, conn: dict[str, Any] | None = None,
                  **goal: Any) -> dict[str, Any]:  # fmt: skip
    """A connection to the sandbox with one export goal of three mappings (one not a property)."""
    config = sandbox_config(box, **(conn or {}), goal=[{
        "type": "export", "name": GOAL, "segment": "vip", "allow_create": True,
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
        "mappings": [{"source": "property", "value": "email", "braze": "email"},
                     {"source": "property", "value": "points", "braze": "points"},
                     {"source": "segments", "braze": "bc_segments"}],
        **goal}])  # fmt: skip
    config["segment"] = [VIP]
    return config


def load_vip_profiles(ws: TuiWorkspace, count: int) -> None:
    """`count` profiles in the vip segment (points 10 and up)."""
    ws.paths.ensure_state_dir()
    with ProfileStore(ws.paths.state_dir / "profiles.db") as store, store.transaction() as tx:
        for i in range(count):
            tx.apply(ProfileWrite(updates=[("braze_external_id", "set", f"ext-{i}"),
                                           ("email", "set", f"u{i}@example.com"),
                                           ("points", "set", 10 + i)]))  # fmt: skip


def raw(ws: TuiWorkspace) -> dict[str, Any]:
    """connections.toml as written (keys, not the model's defaults)."""
    return tomllib.loads(ws.paths.config.read_text(encoding="utf-8"))


def raw_goal(ws: TuiWorkspace) -> dict[str, Any]:
    goal: dict[str, Any] = raw(ws)["connection"][0]["goal"][0]
    return goal


def shown(app: BctuiApp, selector: str) -> str:
    """The plain text of a Label or Static."""
    return str(app.screen.query_one(selector, Static).render())


async def open_export(pilot: Pilot[None]) -> ExportGoalScreen:
    pilot.app.push_screen(ExportGoalScreen("Braze main", GOAL))
    await until(pilot, lambda: isinstance(pilot.app.screen, ExportGoalScreen)
                and bool(pilot.app.screen.query("#err-general")))  # fmt: skip
    screen = pilot.app.screen
    assert isinstance(screen, ExportGoalScreen)
    return screen


async def type_into(pilot: Pilot[None], selector: str, text: str) -> Input:
    """Focus an Input, empty it, and type `text` key by key."""
    field = pilot.app.screen.query_one(selector, Input)
    field.focus()
    field.value = ""
    await pilot.pause()
    await pilot.press(*text)
    return field


async def choose(pilot: Pilot[None], selector: str, steps: int) -> None:
    """Focus a Select, open it and move `steps` options down from its value."""
    pilot.app.screen.query_one(selector, Select).focus()
    await pilot.pause()
    await pilot.press("enter", *(["down"] * steps), "enter")


# -- the export goal's budget --------------------------------------------------------------------


def test_an_export_goals_budget_is_typed_saved_and_reloaded(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(export_config(sandbox))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_export(pilot)
        over = screen.query_one("#on-budget", Select)
        assert over.disabled  # no budget yet: nothing to do past it
        field = await type_into(pilot, "#max-data-points", "12x,5 00")
        assert field.value == "12500"  # digits only: the rest never arrives
        assert not over.disabled
        await choose(pilot, "#on-budget", 1)  # refuse → send partial
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].goals[0] != screen.start)
        app.pop_screen()
        # Opened again: the fields show what was saved.
        screen = await open_export(pilot)
        assert screen.query_one("#max-data-points", Input).value == "12500"
        assert screen.query_one("#on-budget", Select).value == "partial"
        assert not screen.dirty()

    drive(app, scenario)
    goal = raw_goal(workspace)
    assert (goal["max_data_points"], goal["on_budget"]) == (12500, "partial")


def test_emptying_the_budget_removes_both_keys(workspace: TuiWorkspace, sandbox: Sandbox) -> None:
    workspace.write_config(export_config(sandbox, max_data_points=900, on_budget="partial"))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_export(pilot)
        assert screen.query_one("#on-budget", Select).value == "partial"
        await type_into(pilot, "#max-data-points", "")
        assert screen.query_one("#on-budget", Select).disabled
        await pilot.press("ctrl+s")
        await until(pilot, lambda: getattr(app.config.connections[0].goals[0],
                                           "max_data_points", 0) is None)  # fmt: skip

    drive(app, scenario)
    goal = raw_goal(workspace)
    assert "max_data_points" not in goal and "on_budget" not in goal


def test_a_zero_budget_is_refused_under_its_field_and_nothing_is_written(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(export_config(sandbox, max_data_points=900))
    before = workspace.paths.config.read_bytes()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_export(pilot)
        await type_into(pilot, "#max-data-points", "000")
        await pilot.press("ctrl+s")
        error = screen.query_one("#err-max_data_points", Label)
        await until(pilot, lambda: error.display)
        assert "a budget of 0 sends nothing" in shown(app, "#err-max_data_points")
        assert "leave it empty" in shown(app, "#err-max_data_points")
        # Fixed, the message goes and the goal is saved.
        await type_into(pilot, "#max-data-points", "40")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not error.display)

    drive(app, scenario)
    assert before != workspace.paths.config.read_bytes()
    assert raw_goal(workspace)["max_data_points"] == 40


def test_the_goal_editor_names_the_connections_budget_too(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(export_config(sandbox, conn={"max_data_points": 250000}))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot)
        hint = shown(app, "#budget-hint")
        assert "the connection's applies too" in hint and "250,000" in hint

    drive(app, scenario)


def test_a_dry_run_within_the_budget_says_so(workspace: TuiWorkspace, sandbox: Sandbox) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.write_config(export_config(sandbox, max_data_points=1000))
    load_vip_profiles(workspace, 4)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot)
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, DryRunScreen))
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)
        await until(pilot, lambda: app.screen.query_one("#dry-budget").display)
        # 4 profiles × (email, points, segments) against the goal's 1,000.
        assert shown(app, "#dry-budget").startswith(
            'within budget: ~12 of 1,000 data points (export goal "VIPs to Braze")')

    drive(app, scenario)


# -- mapping types -------------------------------------------------------------------------------


def test_a_property_mappings_type_is_chosen_saved_and_set_back_to_auto(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(export_config(sandbox))
    app = workspace.app()
    written: list[list[dict[str, Any]]] = []

    def type_cell(grid: MappingGrid, row: int) -> str:
        return str(grid.table.get_cell(grid.table.coordinate_to_cell_key((row, 0)).row_key,
                                       "type"))  # fmt: skip

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_export(pilot)
        grid = screen.query_one(MappingGrid)
        kind = grid.query_one("#export-map-type", Select)
        fixed = grid.query_one("#export-map-type-fixed", Label)
        assert [type_cell(grid, i) for i in range(3)] == ["auto", "auto", "array"]
        grid.table.focus()
        await pilot.press("down")  # the points row
        await until(pilot, lambda: grid.current == 1)
        assert kind.display and not fixed.display
        await choose(pilot, "#export-map-type", 2)  # auto → string → number
        await until(pilot, lambda: type_cell(grid, 1) == "number")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: raw_goal(workspace)["mappings"][1].get("type") == "number")
        written.append(raw_goal(workspace)["mappings"])
        # A source other than a property has its own type: shown, not offered.
        grid.table.focus()
        await pilot.press("down")
        await until(pilot, lambda: grid.current == 2)
        assert not kind.display and fixed.display
        assert str(fixed.render()) == "array"
        # Back to auto: the key goes.
        await pilot.press("up")
        await until(pilot, lambda: grid.current == 1 and kind.display)
        kind.focus()
        await pilot.press("enter", "up", "up", "enter")  # number → string → auto (the blank)
        await until(pilot, lambda: type_cell(grid, 1) == "auto")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "type" not in raw_goal(workspace)["mappings"][1])

    drive(app, scenario)
    assert written[0] == [
        {"source": "property", "value": "email", "braze": "email"},
        {"source": "property", "value": "points", "braze": "points", "type": "number"},
        {"source": "segments", "braze": "bc_segments"},
    ]
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert [getattr(m, "type", "") for m in getattr(goal, "mappings", ())] == ["", "", ""]


def test_auto_shows_the_type_the_goals_first_run_inferred(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.set_secret("s3", sandbox.aws_secret_access_key)
    workspace.write_config(export_config(sandbox))
    load_vip_profiles(workspace, 3)
    # A real run: it infers the property mappings' types and keeps them.
    result = run_connection(load_config(workspace.paths.config), workspace.paths, "Braze main",
                            RunOptions(started_by="cli"))  # fmt: skip
    assert result.state == st.FINISHED
    app = workspace.app()

    def type_cells(grid: MappingGrid) -> list[str]:
        return [str(grid.table.get_cell(grid.table.coordinate_to_cell_key((i, 0)).row_key,
                                        "type")) for i in range(grid.table.row_count)]  # fmt: skip

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_export(pilot)
        grid = screen.query_one(MappingGrid)
        await until(pilot, lambda: type_cells(grid) == ["auto: string", "auto: number", "array"])
        # Another property: decided afresh at the next run, so just auto.
        grid.table.focus()
        await pilot.press("down")
        await until(pilot, lambda: grid.current == 1)
        await type_into(pilot, "#export-map-value", "email")
        await until(pilot, lambda: type_cells(grid)[1] == "auto")

    drive(app, scenario)


# -- the connection's budget ---------------------------------------------------------------------


async def open_details(pilot: Pilot[None]) -> ConnectionScreen:
    pilot.app.push_screen(ConnectionScreen("Braze main", tab="details"))
    await until(pilot, lambda: isinstance(pilot.app.screen, ConnectionScreen)
                and pilot.app.screen.ready)  # fmt: skip
    screen = pilot.app.screen
    assert isinstance(screen, ConnectionScreen)
    return screen


def test_a_connections_budget_is_set_on_the_details_tab(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(export_config(sandbox))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_details(pilot)
        assert screen.query_one("#details-on-budget", Select).disabled
        await type_into(pilot, "#details-max-data-points", "1000000")
        await choose(pilot, "#details-on-budget", 1)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].max_data_points == 1_000_000)
        assert screen.query_one("#details-max-data-points", Input).value == "1000000"
        assert screen.query_one("#details-on-budget", Select).value == "partial"
        assert not screen.dirty

    drive(app, scenario)
    conn = raw(workspace)["connection"][0]
    assert (conn["max_data_points"], conn["on_budget"]) == (1_000_000, "partial")
    assert "max_data_points" not in conn["goal"][0]  # the goal's own is apart


def test_a_zero_connection_budget_is_refused_under_its_field(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(export_config(sandbox, conn={"max_data_points": 5000}))
    before = workspace.paths.config.read_bytes()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        screen = await open_details(pilot)
        assert screen.query_one("#details-max-data-points", Input).value == "5000"
        await type_into(pilot, "#details-max-data-points", "0")
        error = screen.query_one("#max_data_points-error", Label)
        await pilot.press("ctrl+s")
        await until(pilot, lambda: not error.has_class("-empty"))
        assert "a budget of 0 sends nothing" in str(error.render())
        assert screen.dirty

    drive(app, scenario)
    assert workspace.paths.config.read_bytes() == before


# -- run details ---------------------------------------------------------------------------------


def test_run_details_show_suppressed_echoes_and_a_budget_refusal(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.set_secret("s3", sandbox.aws_secret_access_key)
    workspace.write_config(export_config(sandbox, max_data_points=5))
    load_vip_profiles(workspace, 12)
    # A real run, refused: 12 profiles cost more than 5 data points.
    refused = run_connection(load_config(workspace.paths.config), workspace.paths, "Braze main",
                             RunOptions(started_by="cli"))  # fmt: skip
    assert refused.state == st.FAILED
    # A two-way import's run as the history keeps it.
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store, \
            store.transaction() as tx:  # fmt: skip
        st.insert_run(tx, st.RunRecord("20261130-110000-e0e0e0", "Braze main", 1_796_036_400.0,
                                       st.RUNNING, pid=999_999), [("Loyalty", "import")])
        st.save_goal(tx, "20261130-110000-e0e0e0", st.GoalState(
            "Loyalty", "import", st.FINISHED, {"checked": 9, "updated": 3, "echo_suppressed": 4}))
        st.finish_run(tx, "20261130-110000-e0e0e0", st.FINISHED, "", {})
    app = workspace.app()

    async def open_run(pilot: Pilot[None], run_id: str) -> None:
        pilot.app.push_screen(RunDetailScreen(run_id))
        await until(pilot, lambda: isinstance(pilot.app.screen, RunDetailScreen) and any(
            t.row_count for t in pilot.app.screen.query("#run-detail-goals").results(DataTable)))
    def row_text(table: DataTable[Any]) -> str:
        return " | ".join(str(c) for c in table.get_row_at(0))

    async def narrow(pilot: Pilot[None]) -> None:
        await open_run(pilot, "20261130-110000-e0e0e0")
        table = app.screen.query_one("#run-detail-goals", DataTable)
        assert "4 echoes suppressed" in row_text(table)
        app.pop_screen()
        await open_run(pilot, refused.run_id)
        summary = shown(app, "#run-detail-summary")
        assert "FAILED" in summary and "max_data_points" in summary
        assert "on_budget" in summary  # the fix is there too

    drive(app, narrow)
    app = workspace.app()

    async def wide(pilot: Pilot[None]) -> None:
        await open_run(pilot, "20261130-110000-e0e0e0")
        table = app.screen.query_one("#run-detail-goals", DataTable)
        headings = [str(c.label) for c in table.columns.values()]
        assert "echoes suppressed" in headings
        cells = [str(c).strip() for c in table.get_row_at(0)]
        assert cells[headings.index("echoes suppressed")] == "4"

    drive(app, wide, size=(160, 40))
