"""The segments screen and the segment editor, driven with keys over a real store and config file:
live counts, live counts while editing, saves, renames that carry export goals, refused deletes
and field messages for values the model cannot hold."""

from __future__ import annotations

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Label, Select
from tui_helpers import TuiWorkspace, drive, until

from bctui.engine.config import load_config
from bctui.engine.models import ExportGoal
from bctui.store import ProfileStore, ProfileWrite, Rule
from bctui.tui.app import BctuiApp
from bctui.tui.screens.segment_editor import SegmentEditorScreen, parse_value
from bctui.tui.screens.segments import SegmentsScreen, rule_text

CONFIG = """\
# segments for the tests — keep this comment
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "vip"
match = "all"
rules = [
  { property = "lifetime_value", op = "gte", value = 1000 },
  { property = "country", op = "in", value = ["NL", "DE"] },
]

[[segment]]
name = "travellers"
match = "any"
rules = [{ property = "interests", op = "eq", value = "travel" }]

[[connection]]
name = "Braze main"
braze = { endpoint = "https://rest.iad-01.braze.com", api_key = "secret:braze-main" }

[[connection.goal]]
type = "export"
name = "VIPs to Braze"
segment = "vip"
identifiers = [[{ property = "braze_external_id", braze = "external_id" }]]
mappings = [{ source = "property", value = "email", braze = "email" }]
"""

PROFILES: list[tuple[str, dict[str, object]]] = [
    ("p1", {"lifetime_value": 2400, "country": "NL", "interests": ["travel", "food"]}),
    ("p2", {"lifetime_value": 1200, "country": "DE"}),
    ("p3", {"lifetime_value": 5000, "country": "BE", "interests": "travel"}),
    ("p4", {"lifetime_value": "1850.50", "country": "DE"}),
    ("p5", {"lifetime_value": 300, "country": "NL"}),
]


def setup(workspace: TuiWorkspace, config: str = CONFIG) -> TuiWorkspace:
    """The config file and a store with the five profiles above."""
    workspace.write_config(config)
    workspace.paths.ensure_state_dir()
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store, \
            store.transaction() as tx:  # fmt: skip
        tx.apply_many([
            ProfileWrite(pid, [(k, "set", v) for k, v in props.items()])
            for pid, props in PROFILES
        ])  # fmt: skip
    return workspace


def cells(app: BctuiApp, column: str) -> dict[str, str]:
    table = app.screen.query_one("#segments", DataTable)
    return {str(row.value): str(table.get_cell(row, column)) for row in table.rows}


async def open_segments(pilot: Pilot[None]) -> SegmentsScreen:
    await pilot.app.push_screen(SegmentsScreen())
    screen = pilot.app.screen
    assert isinstance(screen, SegmentsScreen)
    await until(pilot, lambda: "…" not in cells(pilot.app, "members").values())  # type: ignore[arg-type]
    return screen


async def open_editor(pilot: Pilot[None], key: str = "enter") -> SegmentEditorScreen:
    await pilot.press(key)
    await until(pilot, lambda: isinstance(pilot.app.screen, SegmentEditorScreen))
    editor = pilot.app.screen
    assert isinstance(editor, SegmentEditorScreen)
    await until(pilot, lambda: editor.shown_count is not None)
    return editor


def rule_inputs(editor: SegmentEditorScreen, index: int) -> tuple[Input, Select[str], Input]:
    row = editor.rows[index]
    return (row.query_one(".rule-property", Input), row.query_one(".rule-op", Select),
            row.query_one(".rule-value", Input))  # fmt: skip


def test_the_table_shows_rules_counts_and_goals(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        # vip: ≥ 1000 and NL/DE — p1, p2 and p4 (a numeric string); travellers: p1 and p3.
        assert cells(app, "members") == {"vip": "3", "travellers": "2"}
        assert cells(app, "rules")["travellers"] == "interests = travel"
        assert cells(app, "rules")["vip"].startswith("lifetime_value ≥ 1000 · country in")
        assert cells(app, "used") == {"vip": "1 goal", "travellers": "—"}
        detail = str(app.screen.query_one("#segments-detail").render())
        assert "country in NL, DE" in detail  # whole rules beside the clipped cell
        assert "exported by: Braze main / VIPs to Braze" in detail
        # The store changes; r counts again.
        with ProfileStore(workspace.paths.state_dir / "profiles.db") as store, \
                store.transaction() as tx:  # fmt: skip
            tx.apply(ProfileWrite("p5", [("lifetime_value", "set", 9000)]))
        await pilot.press("r")
        await until(pilot, lambda: cells(app, "members")["vip"] == "4")

    drive(app, scenario)


def test_editing_a_rule_updates_the_count_live(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        editor = await open_editor(pilot)
        assert editor.shown_count == 3
        _, _, value = rule_inputs(editor, 0)
        value.focus()
        await pilot.press("ctrl+u", *"2000")
        await until(pilot, lambda: editor.shown_count == 1)  # only p1 (2400) in NL/DE
        _, op, _ = rule_inputs(editor, 1)
        op.value = "exists"  # country exists: p1 and p3 (5000, BE)
        await until(pilot, lambda: editor.shown_count == 2)
        await pilot.press("ctrl+r")  # remove the focused rule: the first one
        await until(pilot, lambda: len(editor.rows) == 1 and editor.shown_count == 5)
        # A rule that cannot be read gives no count, and says why.
        prop, _, _ = rule_inputs(editor, 0)
        prop.focus()
        await pilot.press("ctrl+u")
        await until(pilot, lambda: "property name" in str(
            editor.query_one("#seg-count", Label).render()))  # fmt: skip
        assert editor.shown_count is None

    before = path.read_bytes()
    drive(app, scenario)
    assert path.read_bytes() == before  # nothing saved


def test_a_new_segment_is_saved_as_written(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        editor = await open_editor(pilot, "n")
        assert editor.shown_count == 5  # no rules, match all: everyone
        await pilot.press(*"big", "ctrl+n", *"lifetime_value")
        prop, op, value = rule_inputs(editor, 0)
        assert editor.focused is prop
        op.value = "gte"
        value.focus()
        await pilot.press(*"1500")
        await until(pilot, lambda: editor.shown_count == 3)  # p1, p3, p4
        await pilot.press("ctrl+n", *"country")  # added below the focused rule
        _, op2, value2 = rule_inputs(editor, 1)
        op2.value = "in"
        value2.focus()
        await pilot.press(*'NL, BE, "5"')
        await until(pilot, lambda: editor.shown_count == 2)  # p1, p3
        await pilot.press("f7")  # the country rule moves up
        await until(pilot, lambda: rule_inputs(editor, 0)[0].value == "country")
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await until(pilot, lambda: cells(app, "members").get("big") == "2")

    drive(app, scenario)
    config = load_config(path)
    big = config.segment("big")
    assert big is not None and big.match == "all"
    assert big.rules == (Rule("country", "in", ("NL", "BE", "5")),
                         Rule("lifetime_value", "gte", 1500))  # fmt: skip
    assert isinstance(big.rules[1].value, int)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# segments for the tests — keep this comment")


def test_renaming_a_segment_carries_its_export_goals(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        await open_editor(pilot)
        await pilot.press("ctrl+u", *"big spenders", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))
        await until(pilot, lambda: "big spenders" in cells(app, "members"))

    drive(app, scenario)
    config = load_config(path)
    assert [s.name for s in config.segments] == ["big spenders", "travellers"]
    goal = config.connections[0].goals[0]
    assert isinstance(goal, ExportGoal) and goal.segment == "big spenders"
    assert 'segment = "vip"' not in path.read_text(encoding="utf-8")


def test_delete_is_refused_while_an_export_goal_uses_the_segment(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        before = path.read_bytes()
        await pilot.press("d")  # vip: used by "VIPs to Braze"
        await pilot.pause()
        assert isinstance(app.screen, SegmentsScreen)
        notes = [n.message for n in app._notifications]
        assert any('"vip" is exported by "VIPs to Braze" of "Braze main"' in n for n in notes)
        assert path.read_bytes() == before
        await pilot.press("down", "d")  # travellers: unused, asks first
        await until(pilot, lambda: not isinstance(app.screen, SegmentsScreen))
        await pilot.press("y")
        await until(pilot, lambda: list(cells(app, "members")) == ["vip"])

    drive(app, scenario)
    assert [s.name for s in load_config(path).segments] == ["vip"]


def test_values_the_rule_cannot_hold_get_messages_and_nothing_is_saved(
    workspace: TuiWorkspace,
) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        editor = await open_editor(pilot)
        _, _, value = rule_inputs(editor, 0)  # lifetime_value ≥ …
        value.focus()
        await pilot.press("ctrl+u")
        await pilot.press("ctrl+n", *"points")
        _, op, value3 = rule_inputs(editor, 1)
        op.value = "gt"
        value3.focus()
        await pilot.press(*"lots")
        name = editor.query_one("#seg-name", Input)
        name.value = "travellers"  # taken by the other segment
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, SegmentEditorScreen)
        errors = [str(row.query_one(".rule-error", Label).render()) for row in editor.rows]
        assert errors[0] == 'value: "≥" needs a value'
        assert errors[1].startswith('value: ">" compares numbers: "lots" is not a number')
        assert errors[2] == ""
        assert 'a segment named "travellers" exists' in str(
            editor.query_one("#seg-name-error", Label).render())  # fmt: skip

    before = path.read_bytes()
    drive(app, scenario)
    assert path.read_bytes() == before


def test_copy_starts_a_new_segment_with_the_same_rules(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        editor = await open_editor(pilot, "c")
        assert editor.query_one("#seg-name", Input).value == "vip copy"
        assert editor.shown_count == 3
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))

    drive(app, scenario)
    config = load_config(path)
    assert [s.name for s in config.segments] == ["vip", "travellers", "vip copy"]
    assert config.segments[2].rules == config.segments[0].rules


def test_escape_asks_before_dropping_changes(workspace: TuiWorkspace) -> None:
    setup(workspace)
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        await open_editor(pilot)
        await pilot.press("x", "escape")
        await until(pilot, lambda: type(app.screen).__name__ == "ConfirmModal")
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))
        await pilot.press("end", "ctrl+u", *"vip", "escape")  # back as it was: no question
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))

    drive(app, scenario)


def test_rule_values_as_typed() -> None:
    assert parse_value("gte", " 1000 ") == (1000, "")
    assert parse_value("gt", "2.5") == (2.5, "")
    assert parse_value("lt", "2026-01-31") == ("2026-01-31", "")
    assert parse_value("eq", '"5"') == ("5", "")
    assert parse_value("eq", "NL") == ("NL", "")
    assert parse_value("contains", "12") == ("12", "")
    assert parse_value("in", 'NL, "a, b", 3') == (("NL", "a, b", 3), "")
    assert parse_value("exists", "") == (None, "")
    assert parse_value("in", " , ")[1].startswith('"in" needs a list of values')
    assert parse_value("eq", "")[1] == '"equals" needs a value'
    assert "not a number" in parse_value("lte", "soon")[1]
    assert rule_text(Rule("code", "eq", "5")) == 'code = "5"'
    assert rule_text(Rule("tags", "exists")) == "tags exists"


def other_edit(workspace: TuiWorkspace, app: BctuiApp, old: str, new: str) -> None:
    """Someone else edits connections.toml while the editor is open; the app reloads it."""
    path = workspace.paths.config
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    app.reload_config(announce=False)


def test_an_edit_elsewhere_in_the_file_keeps_the_editor_saving(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        editor = await open_editor(pilot)  # vip
        await pilot.press("ctrl+u", *"big")
        other_edit(workspace, app, '"interests", op = "eq", value = "travel"',
                   '"interests", op = "eq", value = "trains"')  # fmt: skip
        await pilot.pause()
        assert not editor.query_one("#seg-conflict", Label).display
        await pilot.press("ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))

    drive(app, scenario)
    config = load_config(path)
    assert [s.name for s in config.segments] == ["big", "travellers"]
    travellers = config.segment("travellers")
    assert travellers is not None and travellers.rules == (Rule("interests", "eq", "trains"),)


def test_a_change_to_the_edited_segment_on_disk_is_never_overwritten(
    workspace: TuiWorkspace,
) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        editor = await open_editor(pilot)  # vip
        await pilot.press("ctrl+u", *"mine")
        other_edit(workspace, app, "value = 1000 }", "value = 2000 }")
        conflict = editor.query_one("#seg-conflict", Label)
        await until(pilot, lambda: conflict.display)
        assert "was changed in connections.toml" in str(conflict.render())
        assert "f5" in str(conflict.render())
        await pilot.press("ctrl+s")  # refused: the other change stays
        await pilot.pause()
        assert app.screen is editor
        assert 'name = "vip"' in path.read_text(encoding="utf-8")
        await pilot.press("f5")  # loads the segment's new version
        await until(pilot, lambda: rule_inputs(editor, 0)[2].value == "2000")
        assert editor.query_one("#seg-name", Input).value == "vip"
        assert not editor.query_one("#seg-conflict", Label).display
        editor.query_one("#seg-name", Input).focus()
        await pilot.press("end", *" 2", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))

    drive(app, scenario)
    config = load_config(path)
    vip = config.segment("vip 2")
    assert vip is not None and vip.rules[0] == Rule("lifetime_value", "gte", 2000)
    goal = config.connections[0].goals[0]
    assert isinstance(goal, ExportGoal) and goal.segment == "vip 2"


def test_a_segment_removed_on_disk_can_be_kept_as_a_new_one(workspace: TuiWorkspace) -> None:
    path = setup(workspace).paths.config
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await open_segments(pilot)
        await pilot.press("down")
        editor = await open_editor(pilot)  # travellers: no goal uses it
        await pilot.press("ctrl+u", *"explorers")
        text = path.read_text(encoding="utf-8")
        start = text.index('[[segment]]\nname = "travellers"')
        end = text.index("[[connection]]")
        path.write_text(text[:start] + text[end:], encoding="utf-8")
        app.reload_config(announce=False)
        conflict = editor.query_one("#seg-conflict", Label)
        await until(pilot, lambda: conflict.display)
        assert "was removed from connections.toml" in str(conflict.render())
        await pilot.press("f5", "ctrl+s")
        await until(pilot, lambda: isinstance(app.screen, SegmentsScreen))

    drive(app, scenario)
    config = load_config(path)
    assert [s.name for s in config.segments] == ["vip", "explorers"]
    explorers = config.segment("explorers")
    assert explorers is not None and explorers.rules == (Rule("interests", "eq", "travel"),)
