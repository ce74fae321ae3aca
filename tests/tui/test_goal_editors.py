"""The import and export goal editors and the dry-run preview, driven with keys against a live
sandbox: a segment picked from Braze's list, mappings with strategies, identifier rules, saves
checked in connections.toml, picker errors, stale details dropped, and a dry run's counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widgets import DataTable, Label, OptionList, RichLog, SelectionList, Static
from tui_helpers import TuiWorkspace, drive, sandbox_config, until

from bctui.engine import lookups
from bctui.engine.config import load_config
from bctui.engine.models import (
    Audience,
    ExportGoal,
    ExportMapping,
    IdentifierPair,
    ImportGoal,
    ImportMapping,
)
from bctui.errors import BctuiError
from bctui.sandbox import Sandbox, SimulatorSettings
from bctui.secret import Secret
from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.app import BctuiApp
from bctui.tui.screens.dry_run import DryRunScreen
from bctui.tui.screens.export_goal import ExportGoalScreen
from bctui.tui.screens.import_goal import ImportGoalScreen
from bctui.tui.widgets.audience_picker import AudiencePicker, CampaignFilter
from bctui.tui.widgets.mapping_grid import MappingGrid

VIP = {"name": "vip", "match": "all", "rules": [{"property": "points", "op": "gte", "value": 10}]}


def text_of(app: BctuiApp, selector: str) -> str:
    """The plain text a Label or Static shows."""
    return str(app.screen.query_one(selector, Static).render())


def first_option(app: BctuiApp) -> str:
    """The first entry of the segment list ('' before it shows)."""
    found = app.screen.query("#segment-list")
    return str(found.first(OptionList).get_option_at_index(0).prompt) if found else ""


def picker(app: BctuiApp) -> AudiencePicker:
    return app.screen.query_one(AudiencePicker)


def list_loaded(app: BctuiApp) -> bool:
    found = app.screen.query(AudiencePicker)
    return bool(found) and bool(found.first().segments)


def segment_id(box: Sandbox, name: str) -> str:
    return next(s.id for s in box.sim.catalog.segments if s.name == name)


def load_profiles(workspace: TuiWorkspace, count: int = 30) -> None:
    """Profiles with points 0..count-1 (so `vip` holds those with 10 or more)."""
    workspace.paths.ensure_state_dir()
    store = ProfileStore(workspace.paths.state_dir / "profiles.db")
    with store, store.transaction() as tx:
        for i in range(count):
            tx.apply(ProfileWrite(updates=[
                ("braze_external_id", "set", f"ext-{i}"), ("email", "set", f"user{i}@example.com"),
                ("points", "set", i)]))  # fmt: skip


async def open_import(
    pilot: Pilot[None], goal: str | None, draft: ImportGoal | None = None
) -> None:
    """Push the import editor and wait until it shows."""
    pilot.app.push_screen(ImportGoalScreen("Braze main", goal, draft))
    await until(pilot, lambda: bool(pilot.app.screen.query("#err-general")))


async def open_export(
    pilot: Pilot[None], goal: str | None, draft: ExportGoal | None = None
) -> None:
    """Push the export editor and wait until it shows."""
    pilot.app.push_screen(ExportGoalScreen("Braze main", goal, draft))
    await until(pilot, lambda: bool(pilot.app.screen.query("#err-general")))


async def choose_select(pilot: Pilot[None], steps: int) -> None:
    """Open the focused Select and move `steps` options down from its value."""
    await pilot.press("enter", *(["down"] * steps), "enter")


# -- import --------------------------------------------------------------------------------


def test_create_an_import_goal_from_the_live_segment_list(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    app = workspace.app()
    wanted = segment_id(sandbox, "High Value Customers")

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("Braze test users", Audience(""), ()))
        await until(pilot, lambda: list_loaded(app))
        assert "none chosen yet" in text_of(app, "#audience-chosen")
        await pilot.press(*"high val")  # type to filter, enter picks the highlighted match
        await until(pilot, lambda: [s.name for s in picker(app).shown_segments()]
                    == ["High Value Customers"])  # fmt: skip
        await pilot.press("enter")
        await until(pilot, lambda: "High Value Customers" in text_of(app, "#audience-chosen"))
        # Three mappings, one a custom attribute summed.
        await pilot.press("ctrl+a", *"first_name", "tab", *"first_name")
        await pilot.press("ctrl+a", *"custom_attributes.lifetime_value", "tab", *"ltv", "tab")
        await choose_select(pilot, 2)  # set → add → sum
        await pilot.press("ctrl+a", *"email", "tab", *"email", "tab")
        await choose_select(pilot, 3)  # set_if_empty
        # Identifiers: external_id ⇄ braze_external_id OR email ⇄ email.
        await pilot.press("ctrl+g")
        await pilot.press("ctrl+a", *"braze_external_id", "ctrl+g", *"email", "ctrl+s")
        await until(pilot, lambda: "external_id ⇄ braze_external_id   OR  email ⇄ email"
                    in text_of(app, "#ids-line"))  # fmt: skip
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].goals)

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ImportGoal)
    assert goal.name == "Braze test users"
    assert goal.audience == Audience(wanted, "High Value Customers")
    assert goal.mappings == (
        ImportMapping("first_name", "first_name", "set"),
        ImportMapping("custom_attributes.lifetime_value", "ltv", "sum"),
        ImportMapping("email", "email", "set_if_empty"),
    )
    assert goal.identifiers == (
        (IdentifierPair("external_id", "braze_external_id"),),
        (IdentifierPair("email", "email"),),
    )


def test_a_bad_key_shows_brazes_message_in_the_lists_place(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    workspace.set_secret("braze", "not-a-real-key")
    try:
        lookups.fetch_segments(sandbox.braze_url, Secret("not-a-real-key"))
    except BctuiError as exc:
        expected = exc.message
    else:
        raise AssertionError("the sandbox accepted a bad key")
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("x", Audience("abc", "Kept audience"), ()))
        # The chosen audience is there before (and whatever) the list answers.
        assert "Kept audience" in text_of(app, "#audience-chosen")
        await until(pilot, lambda: expected in text_of(app, "#audience-message"))
        assert text_of(app, "#audience-message").startswith("Braze:")
        assert not app.screen.query_one("#audience-list").display

    drive(app, scenario)


def test_an_unset_key_says_where_to_set_it(workspace: TuiWorkspace, sandbox: Sandbox) -> None:
    workspace.write_config(sandbox_config(sandbox))  # no secrets stored
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("x", Audience(""), ()))
        await until(pilot, lambda: "Setup tab" in text_of(app, "#audience-message"))
        assert "set the API key in the Setup tab" in text_of(app, "#audience-message")

    drive(app, scenario)


def test_a_stale_details_answer_never_replaces_the_newer_one(
    workspace: TuiWorkspace, make_sandbox: Callable[..., Sandbox]
) -> None:
    box = make_sandbox(users=20, settings=SimulatorSettings(latency_ms=250))
    workspace.set_secret("braze", box.api_key)
    workspace.set_secret("s3", box.aws_secret_access_key)
    workspace.write_config(sandbox_config(box))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("x", Audience(""), ()))
        await until(pilot, lambda: list_loaded(app))
        await pilot.press(*"country")  # Country: Germany, Country: Netherlands, …
        await until(pilot, lambda: len(picker(app).shown_segments()) >= 2)
        first, second = picker(app).shown_segments()[:2]
        await pilot.press("tab")  # to the list; its first entry is highlighted
        # (On a slow machine a segment highlighted while the filter was typed may have been
        # asked for too: only the last requests count.)
        await until(pilot, lambda: picker(app).requested_details[-1:] == [first.id])
        dropped = picker(app).stale_dropped
        await pilot.press("down")  # while the first answer is still on its way
        await until(pilot, lambda: picker(app).stale_dropped > dropped)
        assert first.name not in picker(app).details_text
        await until(pilot, lambda: second.name in picker(app).details_text
                    and "created" in picker(app).details_text)  # fmt: skip
        assert picker(app).requested_details[-2:] == [first.id, second.id]
        assert first.name not in picker(app).details_text

    drive(app, scenario)


def test_invalid_import_rows_get_messages_and_the_file_is_unchanged(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    before = workspace.paths.config.read_bytes()
    app = workspace.app()
    audience = Audience(segment_id(sandbox, "All Users"), "All Users")
    rules = ((IdentifierPair("external_id", "braze_external_id"),),)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("Braze test users", audience, rules))
        await until(pilot, lambda: isinstance(app.screen, ImportGoalScreen))
        grid = app.screen.query_one(MappingGrid)
        # A field the validator refuses: its message lands under the row.
        await pilot.press("ctrl+a", *"ftrst_name", "tab", *"points", "ctrl+s")
        await until(pilot, lambda: "did you mean" in grid.errors.get((0, "braze"), ""))
        assert '"first_name"' in text_of(app, "#import-map-error")
        # Problems the form finds itself, every one at once.
        await pilot.press("ctrl+a", *"custom_attributes.", "tab", *"p2")
        await pilot.press("ctrl+a", "tab", *"nothing")  # no Braze field
        await pilot.press("ctrl+s")
        await until(pilot, lambda: set(grid.errors) == {(1, "braze"), (2, "braze")})
        assert "a Braze field is needed" in text_of(app, "#import-map-error")
        assert "names no attribute" in grid.errors[(1, "braze")]

    drive(app, scenario)
    assert workspace.paths.config.read_bytes() == before


def test_escape_asks_before_dropping_changes(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("x", Audience("id", "n"), ()))
        await until(pilot, lambda: isinstance(app.screen, ImportGoalScreen))
        await pilot.press("ctrl+a", *"email")
        await pilot.press("escape")
        await until(pilot, lambda: "Discard" in str(app.screen.query_one(Label).render()))
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ImportGoalScreen))
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ImportGoalScreen))
        await pilot.press("y")
        await until(pilot, lambda: not isinstance(app.screen, ImportGoalScreen))

    drive(app, scenario)


# -- export --------------------------------------------------------------------------------


def test_create_an_export_goal_on_a_local_segment(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    config = sandbox_config(sandbox)
    config["segment"] = [VIP]
    workspace.write_config(config)
    load_profiles(workspace)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, None, ExportGoal("VIPs to Braze", "", ()))
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        # The member count arrives from its worker.
        await until(pilot, lambda: "20 members" in first_option(app))
        await pilot.press("enter")
        await until(pilot, lambda: "vip" in text_of(app, "#segment-chosen"))
        await pilot.press("ctrl+g", "ctrl+a", *"braze_external_id", "ctrl+s")
        await until(pilot, lambda: "braze_external_id" in text_of(app, "#ids-line"))
        await pilot.press("ctrl+a", *"email", "tab", *"email")  # property email → email
        await pilot.press("ctrl+a", "shift+tab")
        await choose_select(pilot, 1)  # property → profile_id
        await pilot.press("tab", *"bc_profile_id")  # the value field is skipped: disabled
        await pilot.press("ctrl+a", "shift+tab")
        await choose_select(pilot, 5)  # property → static
        await pilot.press("tab", *"bctui", "tab", *"source")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].goals)

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ExportGoal)
    assert goal.segment == "vip"
    assert goal.identifiers == ((IdentifierPair("external_id", "braze_external_id"),),)
    assert goal.mappings == (
        ExportMapping("property", "email", "email"),
        ExportMapping("profile_id", "bc_profile_id"),
        ExportMapping("static", "source", "bctui"),
    )


def _export_config(box: Sandbox, **goal: Any) -> dict[str, Any]:
    config = sandbox_config(box, goal=[{
        "type": "export", "name": "VIPs to Braze", "segment": "vip", "allow_create": True,
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
        "mappings": [{"source": "property", "value": "email", "braze": "email"},
                     {"source": "property", "value": "points", "braze": "points"}],
        **goal}])  # fmt: skip
    config["segment"] = [VIP]
    return config


def test_a_duplicate_braze_attribute_is_refused_under_its_row(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.write_config(_export_config(sandbox))
    before = workspace.paths.config.read_bytes()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, "VIPs to Braze")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        await pilot.press("ctrl+a", *"first_name", "tab", *"email", "ctrl+s")
        grid = app.screen.query_one(MappingGrid)
        # Added after the highlighted first row: the second row maps "email" again.
        await until(pilot, lambda: "mapped twice" in grid.errors.get((1, "braze"), ""))
        mark = grid.table.get_cell_at(Coordinate(1, 0))
        assert "✗" in str(mark)

    drive(app, scenario)
    assert workspace.paths.config.read_bytes() == before


# -- dry run -------------------------------------------------------------------------------


def test_dry_run_preview_shows_what_the_export_would_do(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.set_secret("s3", sandbox.aws_secret_access_key)
    workspace.write_config(_export_config(sandbox))
    load_profiles(workspace)
    app = workspace.app()

    def count(row: str) -> str:
        table = app.screen.query_one("#dry-counts", DataTable)
        return str(table.get_cell(row, "count")).strip()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, "VIPs to Braze")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, DryRunScreen))
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)
        assert count("checked") == "20"
        assert count("created") == "20"  # the sandbox knows none of these external ids
        assert int(count("data_points").replace(",", "")) > 0
        assert "finished" in text_of(app, "#dry-status")
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))

    drive(app, scenario)
    # Nothing was sent: Braze has none of the 20 profiles.
    assert sandbox.sim.user(external_id="ext-15") is None


def test_dry_run_saves_unsaved_changes_first(workspace: TuiWorkspace, sandbox: Sandbox) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.write_config(_export_config(sandbox))
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, "VIPs to Braze")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        await pilot.press("ctrl+a", *"first_name", "tab", *"first_name", "ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, DryRunScreen))
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)
        await pilot.press("escape")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        await pilot.press("escape")  # saved: nothing to ask about
        await until(pilot, lambda: app.screen.__class__.__name__ == "ConnectionsScreen")

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ExportGoal)
    assert ExportMapping("property", "first_name", "first_name") in goal.mappings


def test_dry_run_shows_the_estimate_against_the_budget_and_the_edit_keeps_it(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.write_config(_export_config(sandbox, max_data_points=10, on_budget="partial"))
    load_profiles(workspace)  # 20 profiles in vip, 2 data points each
    app = workspace.app()

    def log_text() -> str:
        log = app.screen.query_one("#dry-log", RichLog)
        return "\n".join(line.text for line in log.lines)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, "VIPs to Braze")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        await pilot.press("ctrl+a", *"first_name", "tab", *"first_name", "ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, DryRunScreen))
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)
        table = app.screen.query_one("#dry-counts", DataTable)
        assert str(table.get_cell("data_points", "count")).strip() == "10"
        await until(pilot, lambda: "budget reached: would send 10 of ~40 data points"
                    in log_text())
        # Said above the counts too, not only in the log.
        await until(pilot, lambda: app.screen.query_one("#dry-budget").display)
        assert text_of(app, "#dry-budget").startswith(
            'over budget: ~40 data points against 10 (export goal "VIPs to Braze") — would send '
            "10 now, the rest next run")

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ExportGoal)
    assert ExportMapping("property", "first_name", "first_name") in goal.mappings
    assert (goal.max_data_points, goal.on_budget) == (10, "partial")


def test_campaign_filter_loads_only_on_demand_and_saves_the_checked_ones(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    app = workspace.app()
    audience = Audience(segment_id(sandbox, "All Users"), "All Users")
    rules = ((IdentifierPair("external_id", "braze_external_id"),),)
    chosen: list[str] = []

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("Braze test users", audience, rules))
        campaigns = app.screen.query_one(CampaignFilter)
        await until(pilot, lambda: list_loaded(app))
        assert not campaigns.loaded and not campaigns.display  # nothing asked of Braze
        await pilot.press("ctrl+o")
        listing = campaigns.query_one("#campaign-list", SelectionList)
        await until(pilot, lambda: listing.option_count > 0)
        first = str(listing.get_option_at_index(0).value)
        assert first in {c.id for c in sandbox.sim.catalog.campaigns}
        chosen.append(first)
        await pilot.press("space")  # the highlighted first campaign
        await until(pilot, lambda: campaigns.chosen == (first,))
        assert "1 chosen" in text_of(app, "#campaign-summary")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].goals)

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ImportGoal)
    assert goal.audience.campaign_ids == tuple(chosen)


def test_property_names_complete_from_the_store(workspace: TuiWorkspace, sandbox: Sandbox) -> None:
    workspace.write_config(_export_config(sandbox))
    load_profiles(workspace)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, "VIPs to Braze")
        editor = app.screen
        assert isinstance(editor, ExportGoalScreen)
        await until(pilot, lambda: editor.properties.names)
        await pilot.press("ctrl+a", *"poi")
        await until(pilot, lambda: getattr(app.focused, "_suggestion", "") == "points")
        await pilot.press("right")
        grid = app.screen.query_one(MappingGrid)
        await until(pilot, lambda: grid.rows[1]["value"] == "points")

    drive(app, scenario)


def test_a_mapping_type_from_the_file_is_shown_and_kept_when_the_goal_is_edited(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    config = _export_config(sandbox)
    config["connection"][0]["goal"][0]["mappings"][1]["type"] = "number"
    workspace.write_config(config)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_export(pilot, "VIPs to Braze")
        await until(pilot, lambda: isinstance(app.screen, ExportGoalScreen))
        grid = app.screen.query_one(MappingGrid)
        assert str(grid.table.get_cell_at(Coordinate(1, 3))) == "points"
        assert str(grid.table.get_cell_at(Coordinate(1, 4))) == "number"
        await pilot.press("ctrl+a", *"first_name", "tab", *"first_name", "ctrl+s")
        await until(pilot, lambda: len(getattr(app.config.connections[0].goals[0], "mappings",
                                               ())) == 3)

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ExportGoal)
    assert ExportMapping("property", "points", "points", "number") in goal.mappings
    assert ExportMapping("property", "first_name", "first_name") in goal.mappings
