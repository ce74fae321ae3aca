"""Names, values, errors and log lines with square brackets show as written on the segments,
segment editor, profiles, run panel, run strip, run options, modals, help and config problem
screens: never read as markup (`[/x]` would crash the app, `[b]x[/b]` would lose text)."""

from __future__ import annotations

import io
from typing import Any, ClassVar

from rich.console import Console
from run_records import RUN_ID, recorded_config, write_run
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import DataTable, Input, Label, RichLog, Select, Static
from tui_helpers import FIXED_NOW, TuiWorkspace, drive, until

from bctui.engine.runs.events import GoalFinished, LogLine, PhaseChanged, RunFinished, RunStarted
from bctui.engine.runs.lock import RunLock
from bctui.engine.runs.runner import log_path
from bctui.store import ProfileStore, ProfileWrite
from bctui.tui.screens.config_problem import ConfigProblemScreen
from bctui.tui.screens.confirm import ConfirmModal, PromptModal
from bctui.tui.screens.help import HelpScreen
from bctui.tui.screens.profiles import ProfilesScreen
from bctui.tui.screens.run import RunScreen
from bctui.tui.screens.run_options import RunOptionsModal
from bctui.tui.screens.segment_editor import SegmentEditorScreen
from bctui.tui.screens.segments import SegmentsScreen
from bctui.tui.widgets.run_progress import GoalProgressView
from bctui.tui.widgets.run_strip import RunStrip

CRASH = "Crash [/x]"
BOLD = "[b]x[/b]"
CONNECTION = f"Main {CRASH}"
GOAL = f"VIPs {BOLD}"

CONFIG = f"""\
[store]
url = "sqlite:///profiles.db"

[[segment]]
name = "{CRASH}"
match = "all"
rules = [{{ property = "tag", op = "eq", value = "{BOLD}" }}]

[[segment]]
name = "{BOLD}"
match = "any"
rules = [{{ property = "tag", op = "contains", value = "[/x]" }}]

[[connection]]
name = "{CONNECTION}"
braze = {{ endpoint = "https://rest.iad-01.braze.com", api_key = "secret:braze-main" }}

[[connection.goal]]
type = "export"
name = "{GOAL}"
segment = "{CRASH}"
identifiers = [[{{ property = "braze_external_id", braze = "external_id" }}]]
mappings = [{{ source = "property", value = "email", braze = "email" }}]
"""


def text(widget: Any) -> str:
    """What a label or static shows, as plain text."""
    return str(widget.render())


def setup(workspace: TuiWorkspace) -> TuiWorkspace:
    """The config above and a store with one profile whose values hold brackets."""
    workspace.write_config(CONFIG)
    workspace.paths.ensure_state_dir()
    with ProfileStore(workspace.paths.state_dir / "profiles.db") as store, \
            store.transaction() as tx:  # fmt: skip
        tx.apply(ProfileWrite("p-[/x]", [("tag", "set", BOLD), ("note", "set", CRASH)]))
    return workspace


def test_segments_and_the_editor_show_names_and_values_as_written(
    workspace: TuiWorkspace,
) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(SegmentsScreen())
        await pilot.pause()
        table = app.screen.query_one("#segments", DataTable)
        names = [str(table.get_cell_at((row, 0))) for row in range(table.row_count)]
        assert names == [CRASH, BOLD]
        assert str(table.get_cell_at((0, 2))) == f"tag = {BOLD}"
        assert str(table.get_cell_at((1, 2))) == "tag contains [/x]"
        await until(pilot, lambda: str(table.get_cell_at((0, 3))).strip() == "1")
        detail = text(app.screen.query_one("#segments-detail", Static))
        assert f"exported by: {CONNECTION} / {GOAL}" in detail
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, SegmentEditorScreen))
        editor = app.screen
        header = text(editor.query_one("#seg-header", Label))
        assert f"Segments › {CRASH} ─ exported by {CONNECTION} / {GOAL}" in header
        assert editor.query_one("#seg-name", Input).value == CRASH
        await until(pilot, lambda: "note" in text(editor.query_one("#seg-properties", Static)))
        # A problem quoting a typed name shows it as typed.
        editor.query_one("#seg-name", Input).value = BOLD
        await pilot.press("ctrl+s")
        error = editor.query_one("#seg-name-error", Label)
        await until(pilot, lambda: error.display)
        assert f'a segment named "{BOLD}" exists' in text(error)

    drive(app, scenario, size=(160, 48))


def test_profiles_show_values_and_the_typed_search_as_written(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    async def scenario(pilot: Pilot[None]) -> None:
        await pilot.app.push_screen(ProfilesScreen())
        screen = app.screen
        assert isinstance(screen, ProfilesScreen)
        box = screen.query_one("#profile-search", Input)
        box.focus()
        await pilot.press(*"note=[b]nobody[/b]", "enter")
        await until(pilot, lambda: screen.search is not None)
        assert "[b]nobody[/b]" in text(screen.query_one("#profile-message", Label))
        screen.search = None
        box.value = ""
        await pilot.press(*"p-[/x]", "enter")
        await until(pilot, lambda: screen.shown is not None)
        props = screen.query_one("#profile-props", DataTable)
        rows = {str(props.get_cell_at((r, 0))): str(props.get_cell_at((r, 1)))
                for r in range(props.row_count)}  # fmt: skip
        assert rows == {"note": CRASH, "tag": BOLD}
        assert "p-[/x]" in text(screen.query_one("#profile-summary", Static))

    drive(app, scenario, size=(160, 48))


def test_modals_help_and_run_options_show_names_as_written(workspace: TuiWorkspace) -> None:
    app = setup(workspace).app()

    class Tipped(Screen[None]):
        BINDINGS: ClassVar[list[BindingType]] = [
            Binding("f9", "noop", f"Do {CRASH}", tooltip=f"the {BOLD} thing"),
        ]

        def action_noop(self) -> None:
            """Nothing."""

    async def scenario(pilot: Pilot[None]) -> None:
        app.push_screen(ConfirmModal(f'Delete "{CRASH}"?', f"detail {BOLD}", yes="Delete"))
        await pilot.pause()
        assert text(app.screen.query_one(".modal-title", Label)) == f'Delete "{CRASH}"?'
        assert text(app.screen.query_one(".modal-detail", Static)) == f"detail {BOLD}"
        await pilot.press("escape")
        app.push_screen(
            PromptModal(f'Rename "{BOLD}"', value=CRASH, detail=CRASH, check=lambda t: f"no {t}")
        )
        await pilot.pause()
        assert text(app.screen.query_one(".modal-title", Label)) == f'Rename "{BOLD}"'
        await pilot.press("enter")
        assert text(app.screen.query_one("#prompt-error", Label)) == f"no {CRASH}"
        await pilot.press("escape")
        await app.push_screen(Tipped())
        app.push_screen(HelpScreen(app.screen))
        await pilot.pause()
        console = Console(width=200, record=True, file=io.StringIO())
        console.print(app.screen.query_one("#help-keys Static", Static).content)
        keys = console.export_text()
        assert f"Do {CRASH} — the {BOLD} thing" in keys
        await pilot.press("escape")
        assert app.workspace is not None
        conn = app.config.connections[0]
        app.push_screen(RunOptionsModal(conn))
        await pilot.pause()
        assert text(app.screen.query_one(".modal-title", Label)) == f'Run "{CONNECTION}"'
        select = app.screen.query_one("#run-goal", Select)
        select.value = GOAL
        await pilot.pause()
        assert f"export · {GOAL}" in text(select.query_one("SelectCurrent #label", Static))

    drive(app, scenario, size=(120, 40))


def test_the_config_problem_screen_quotes_keys_as_written(workspace: TuiWorkspace) -> None:
    workspace.write_config('[store]\nurl = "sqlite:///profiles.db"\n"[/x]" = "[b]x[/b]"\n')
    app = workspace.app()

    async def scenario(pilot: Pilot[None]) -> None:
        await until(pilot, lambda: isinstance(app.screen, ConfigProblemScreen))
        problems = " ".join(text(s) for s in app.screen.query(".problem").results(Static))
        assert "[/x]" in problems

    drive(app, scenario)


def test_the_run_panel_and_strip_show_names_errors_and_log_lines_as_written(
    workspace: TuiWorkspace,
) -> None:
    config = recorded_config()
    config["connection"][0]["name"] = CONNECTION
    config["connection"][0]["goal"][1]["name"] = GOAL
    workspace.write_config(config)
    paths = workspace.paths
    t0 = FIXED_NOW - 60
    events = [
        RunStarted(run_id=RUN_ID, connection=CONNECTION, goals=[GOAL], pid=4242,
                   started_by="scheduler", ts=t0),
        PhaseChanged(goal=GOAL, phase="sending", detail="batches", ts=t0 + 1),
        LogLine(level="error", goal=GOAL, message=f"Braze said {CRASH} and {BOLD}", ts=t0 + 2),
    ]  # fmt: skip
    finished = [
        GoalFinished(goal=GOAL, goal_type="export", state="FAILED", counts={}, data_points=0,
                     seconds=3.0, error=f"Braze error {CRASH}", ts=t0 + 3),
        RunFinished(run_id=RUN_ID, state="FAILED", error=f"run error {BOLD}", ts=t0 + 4),
    ]  # fmt: skip
    write_run(paths, events, state="RUNNING", connection=CONNECTION)
    lock = RunLock(paths.locks_dir, CONNECTION)
    lock.acquire(RUN_ID)  # this process plays the run's
    app = workspace.app(poll_seconds=0.2)

    async def scenario(pilot: Pilot[None]) -> None:
        try:
            strip = app.screen.query_one(RunStrip)
            await until(pilot, lambda: strip.query_one(GoalProgressView).goal.name == GOAL)
            title = Content.from_markup(strip.border_title or "").plain
            assert title.startswith(f"{CONNECTION} ─ running")
            label = strip.query_one(GoalProgressView).query_one(".goal-title", Label)
            await until(pilot, lambda: text(label) == f'export "{GOAL}"')
        finally:
            with open(log_path(paths, RUN_ID), "ab") as handle:
                handle.write(b"".join(e.to_json() + b"\n" for e in finished))
            lock.release()
        app.push_screen(RunScreen(CONNECTION, RUN_ID))
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: screen.ended)
        log = "\n".join(line.text for line in screen.query_one("#run-log", RichLog).lines)
        assert f"Braze said {CRASH} and {BOLD}" in log
        assert CONNECTION in text(screen.query_one("#run-title", Label))
        goal = screen.query_one(GoalProgressView)
        await until(pilot, lambda: text(goal.query_one(".goal-error", Label)) != "")
        assert text(goal.query_one(".goal-title", Label)) == f'export "{GOAL}"'
        assert text(goal.query_one(".goal-error", Label)) == f"Braze error {CRASH}"

    drive(app, scenario, size=(120, 40))
