"""The goal editors' review fixes: names with markup characters shown as typed, ctrl+x deleting a
row from its focused field, ctrl+a keeping the new row's field in view at 80×24, no rules of the
editors' own beyond the validator's, escape clearing the audience filter first, and a dry run
whose pictures are coalesced."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from textual.coordinate import Coordinate
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import Input, RichLog, SelectionList, Static
from tui_helpers import TuiWorkspace, drive, sandbox_config, until

from bctui.engine.config import load_config
from bctui.engine.models import Audience, IdentifierPair, ImportGoal, ImportMapping
from bctui.engine.runs.events import read_events
from bctui.engine.runs.runner import log_path
from bctui.sandbox import Sandbox
from bctui.sandbox.catalog import Campaign, Segment
from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.app import BctuiApp
from bctui.tui.screens.dry_run import DryRunScreen
from bctui.tui.screens.export_goal import ExportGoalScreen
from bctui.tui.screens.import_goal import ImportGoalScreen
from bctui.tui.widgets.audience_picker import AudiencePicker
from bctui.tui.widgets.goal_segment_picker import SegmentPicker
from bctui.tui.widgets.identifier_rules import IdentifierRulesModal, PairsEditor
from bctui.tui.widgets.mapping_grid import MappingGrid

CRASH = "Crash [/x] [b]x[/b]"
"""A name that crashes markup parsing ([/x] closes nothing) and loses text ([b]…[/b])."""
RULES = ((IdentifierPair("external_id", "braze_external_id"),),)


def text_of(app: BctuiApp, selector: str) -> str:
    """The plain text a Label or Static shows."""
    return str(app.screen.query_one(selector, Static).render())


def add_to_catalog(box: Sandbox, segment: Segment, campaign: Campaign) -> None:
    """Give the simulated Braze workspace one more segment and campaign."""
    sim = box.sim
    sim.catalog = dataclasses.replace(
        sim.catalog,
        segments=(*sim.catalog.segments, segment),
        campaigns=(*sim.catalog.campaigns, campaign),
    )
    sim._segments[segment.id] = segment  # the simulator's index for /segments/details
    sim._campaigns[campaign.id] = campaign


def load_profiles(workspace: TuiWorkspace, count: int) -> None:
    """Profiles with points 0..count-1."""
    workspace.paths.ensure_state_dir()
    store = ProfileStore(workspace.paths.state_dir / "profiles.db")
    with store, store.transaction() as tx:
        for i in range(count):
            tx.apply(ProfileWrite(updates=[
                ("braze_external_id", "set", f"ext-{i}"), ("email", "set", f"u{i}@x.com"),
                ("points", "set", i)]))  # fmt: skip


async def open_import(pilot: Pilot[None], goal: str | None, draft: ImportGoal | None) -> None:
    """Push the import editor and wait until it shows."""
    pilot.app.push_screen(ImportGoalScreen("Braze main", goal, draft))
    await until(pilot, lambda: bool(pilot.app.screen.query("#err-general")))


def list_loaded(app: BctuiApp) -> bool:
    found = app.screen.query(AudiencePicker)
    return bool(found) and bool(found.first().segments)


# -- markup ----------------------------------------------------------------------------------


def test_braze_and_goal_names_with_markup_show_as_typed_in_the_import_editor(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    segment = Segment("seg-markup", CRASH, lambda user: True, "[/x] all of them",
                      tags=("[b]t[/b]",), teams=("Team [/y]",))  # fmt: skip
    campaign = Campaign("camp-markup", "Aaa promo [/x]", 0.0, 0.0, description="[b]about[/b]",
                        channels=("email",))  # fmt: skip
    add_to_catalog(sandbox, segment, campaign)
    workspace = live_workspace()
    app = workspace.app()
    draft = ImportGoal(
        "Loyalty [v2] [/x]",
        Audience(segment.id, CRASH),
        ((IdentifierPair("user_alias", "alias [/x]", "lbl [b]x[/b]"),),),
        (ImportMapping("bad [/x]", "name [/x]", "set"),),
    )

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, draft)
        assert '"Loyalty [v2] [/x]"' in text_of(app, "#goal-header")
        assert CRASH in text_of(app, "#audience-chosen")
        assert "user_alias[lbl [b]x[/b]] ⇄ alias [/x]" in text_of(app, "#ids-line")
        grid = app.screen.query_one(MappingGrid)
        assert str(grid.table.get_cell_at(Coordinate(0, 1))) == "bad [/x]"
        assert str(grid.table.get_cell_at(Coordinate(0, 2))) == "name [/x]"
        # The segment's list entry and its details (Braze's name, description, tags, teams).
        await until(pilot, lambda: list_loaded(app))
        await pilot.press(*"crash")
        picker = app.screen.query_one(AudiencePicker)
        await until(pilot, lambda: [s.name for s in picker.shown_segments()] == [CRASH])
        await until(pilot, lambda: "created" in picker.details_text)
        for shown in (CRASH, "[/x] all of them", "[b]t[/b]", "Team [/y]"):
            assert shown in picker.details_text
        # A campaign's name and details.
        await pilot.press("ctrl+o")
        listing = app.screen.query_one("#campaign-list", SelectionList)
        await until(pilot, lambda: listing.option_count > 0)
        assert str(listing.get_option_at_index(0).prompt) == "Aaa promo [/x]"
        await until(pilot, lambda: "[b]about[/b]" in text_of(app, "#campaign-details"))
        # The validator's message quotes the bad field under its row, as typed.
        await pilot.press("ctrl+s")
        await until(pilot, lambda: grid.errors.get((0, "braze")))
        assert '"bad [/x]"' in text_of(app, "#import-map-error")

    drive(app, scenario)


def test_names_with_markup_show_as_typed_in_the_export_editor_and_the_dry_run(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.set_secret("s3", sandbox.aws_secret_access_key)
    config = sandbox_config(sandbox, goal=[{
        "type": "export", "name": "VIPs [/x]", "segment": CRASH, "allow_create": True,
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
        "mappings": [{"source": "property", "value": "email", "braze": "email"}]}])  # fmt: skip
    config["segment"] = [{"name": CRASH, "match": "all",
                          "rules": [{"property": "points", "op": "gte", "value": 10}]}]  # fmt: skip
    workspace.write_config(config)
    load_profiles(workspace, 12)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        app.push_screen(ExportGoalScreen("Braze main", "VIPs [/x]"))
        await until(pilot, lambda: bool(app.screen.query(SegmentPicker)))
        assert '"VIPs [/x]"' in text_of(app, "#goal-header")
        assert CRASH in text_of(app, "#segment-chosen")
        await pilot.press("ctrl+d")
        await until(pilot, lambda: isinstance(app.screen, DryRunScreen))
        assert 'Dry run of "VIPs [/x]"' in text_of(app, "#dry-header")
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)
        assert "finished" in text_of(app, "#dry-status")
        log = "\n".join(line.text for line in app.screen.query_one("#dry-log", RichLog).lines)
        assert "[VIPs [/x]] finished: 2 created" in log

    drive(app, scenario)


# -- keys ------------------------------------------------------------------------------------


def test_ctrl_x_deletes_the_row_whose_field_has_the_focus(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    app = workspace.app()
    mappings = (ImportMapping("first_name", "first_name"), ImportMapping("email", "email"))
    draft = ImportGoal("x", Audience("id", "n"), RULES, mappings)

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, draft)
        grid = app.screen.query_one(MappingGrid)
        await pilot.press("ctrl+a", *"last_name")  # a third row, its Braze field focused
        assert isinstance(app.focused, Input) and app.focused.id == "import-map-braze"
        await until(pilot, lambda: len(grid.rows) == 3 and grid.rows[1]["braze"] == "last_name")
        await pilot.press("ctrl+x")
        await until(pilot, lambda: [r["braze"] for r in grid.rows] == ["first_name", "email"])
        # In the identifier rules modal too, with the property field focused.
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, IdentifierRulesModal))
        pairs = app.screen.query_one(PairsEditor)
        await pilot.press("ctrl+a", *"email")
        assert isinstance(app.focused, Input) and app.focused.id == "ids-property"
        await until(pilot, lambda: len(pairs.rows) == 2)
        await pilot.press("ctrl+x")
        await until(pilot, lambda: [r["property"] for r in pairs.rows] == ["braze_external_id"])

    drive(app, scenario)


def _inside(widget: Widget, container: Widget) -> bool:
    region = widget.region
    return bool(region) and container.region.contains_region(region)


def test_ctrl_a_keeps_the_new_rows_field_in_view_at_80x24(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    app = workspace.app()
    draft = ImportGoal("x", Audience("id", "n"), RULES)  # no mappings: the grid is at the end

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, draft)
        # The segment list and its details change the form's height: let them arrive first.
        await until(pilot, lambda: list_loaded(app))
        picker = app.screen.query_one(AudiencePicker)
        await until(pilot, lambda: "created" in picker.details_text)
        form = app.screen.query_one("#goal-form")
        for rows in (1, 2, 3):
            await pilot.press("ctrl+a")
            grid = app.screen.query_one(MappingGrid)
            await until(pilot, lambda: len(grid.rows) == rows)  # noqa: B023
            await pilot.pause()
            await pilot.pause()
            focused = app.focused
            assert isinstance(focused, Input) and focused.id == "import-map-braze"
            await until(pilot, lambda: _inside(focused, form))  # noqa: B023
            await pilot.press(*"email")
            await until(pilot, lambda: grid.rows[grid.current or 0]["braze"] == "email")  # noqa: B023

    drive(app, scenario, size=(80, 24))


def test_escape_clears_the_audience_filter_before_going_back(
    live_workspace: Callable[..., TuiWorkspace], sandbox: Sandbox
) -> None:
    workspace = live_workspace()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, None, ImportGoal("x", Audience(""), RULES))
        await until(pilot, lambda: list_loaded(app))
        picker = app.screen.query_one(AudiencePicker)
        every = len(picker.segments)
        await pilot.press(*"high val")
        await until(pilot, lambda: len(picker.shown_segments()) == 1)
        await pilot.press("escape")
        await until(pilot, lambda: len(picker.shown_segments()) == every)
        assert app.screen.query_one("#audience-filter", Input).value == ""
        assert isinstance(app.screen, ImportGoalScreen)
        await pilot.press("escape")  # an empty filter: back (asking first: a new goal)
        await until(pilot, lambda: not isinstance(app.screen, ImportGoalScreen))

    drive(app, scenario)


# -- the validator's rules, not the editor's ---------------------------------------------------


def _import_config(box: Sandbox, **goal: Any) -> dict[str, Any]:
    segment = next(s for s in box.sim.catalog.segments if s.name == "All Users")
    return sandbox_config(box, goal=[{
        "type": "import", "name": "Braze users",
        "audience": {"segment_id": segment.id, "name": segment.name},
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
        **goal}])  # fmt: skip


def test_a_property_mapped_twice_that_validate_allows_can_be_saved(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.write_config(_import_config(sandbox, mappings=[
        {"braze": "first_name", "property": "name"},
        {"braze": "last_name", "property": "name"}]))  # fmt: skip
    load_config(workspace.paths.config)  # what `bctui validate` checks: it is a valid file
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, "Braze users", None)
        app.screen.query_one("#allow-create").focus()
        await pilot.press("space")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.config.connections[0].goals[0].allow_create)
        assert app.screen.query_one(MappingGrid).errors == {}

    drive(app, scenario)
    goal = load_config(workspace.paths.config).connections[0].goals[0]
    assert isinstance(goal, ImportGoal) and goal.allow_create
    assert [m.property for m in goal.mappings] == ["name", "name"]


def test_identifier_rules_are_checked_by_the_validator_when_saved(
    workspace: TuiWorkspace, sandbox: Sandbox
) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.write_config(_import_config(sandbox))
    before = workspace.paths.config.read_bytes()
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_import(pilot, "Braze users", None)
        await pilot.press("ctrl+g")
        await until(pilot, lambda: isinstance(app.screen, IdentifierRulesModal))
        # external_id and braze_id in one group: the modal takes it, the validator refuses it.
        await pilot.press("ctrl+a", *"bid", "shift+tab", "enter", "up", "enter", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, ImportGoalScreen))
        assert "braze_id" in text_of(app, "#ids-line")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: "at most one of" in text_of(app, "#err-identifiers"))

    drive(app, scenario)
    assert workspace.paths.config.read_bytes() == before


# -- the dry run's pictures ----------------------------------------------------------------------


def test_the_dry_run_coalesces_its_pictures(workspace: TuiWorkspace, sandbox: Sandbox) -> None:
    workspace.set_secret("braze", sandbox.api_key)
    workspace.set_secret("s3", sandbox.aws_secret_access_key)
    config = sandbox_config(sandbox, goal=[{
        "type": "export", "name": "All to Braze", "segment": "all", "allow_create": True,
        "identifiers": [[{"braze": "external_id", "property": "braze_external_id"}]],
        "mappings": [{"source": "property", "value": "email", "braze": "email"}]}])  # fmt: skip
    config["segment"] = [{"name": "all", "match": "all",
                          "rules": [{"property": "points", "op": "gte", "value": 0}]}]  # fmt: skip
    workspace.write_config(config)
    load_profiles(workspace, 3000)
    app = workspace.app()
    seen: dict[str, Any] = {}

    async def scenario(pilot: Pilot[None]) -> None:
        started = time.monotonic()
        app.push_screen(DryRunScreen("Braze main", "All to Braze"))
        await until(pilot, lambda: app.screen.has_class("-over"), timeout=30)
        screen = app.screen
        assert isinstance(screen, DryRunScreen)
        seen.update(run_id=screen.run_id, updates=screen.updates,
                    seconds=time.monotonic() - started)  # fmt: skip
        assert screen.progress is not None and screen.progress.state == "FINISHED"

    drive(app, scenario)
    events = list(read_events(log_path(workspace.paths, seen["run_id"])))
    assert seen["updates"] < len(events)
    assert seen["updates"] <= 5 * seen["seconds"] + 2
