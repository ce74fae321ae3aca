"""The first screen: every connection with its switch, schedule, next and last run; the strip below
follows the highlighted connection's run."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Label

from bctui.engine.models import BrazeSettings, Config, Connection
from bctui.engine.runs import history
from bctui.engine.runs.launch import RunHandle, launch_run
from bctui.engine.runs.runner import RunOptions
from bctui.engine.secrets import secret_name_for
from bctui.errors import BctuiError
from bctui.tui.app import BctuiApp, RunsSnapshot
from bctui.tui.screens.confirm import ConfirmModal, PromptModal
from bctui.tui.widgets.connection_table import ConnectionTable
from bctui.tui.widgets.run_strip import RunStrip

DEFAULT_ENDPOINT = "https://rest.iad-01.braze.com"


class ConnectionsScreen(Screen[None]):
    """The table of connections."""

    CSS_PATH = "connections.tcss"
    HELP_TITLE = "Connections"
    AUTO_FOCUS = "#connections"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_connection", "On/off", id="connections-toggle",
                tooltip="Switch the highlighted connection on or off (scheduled runs need on)"),
        Binding("enter", "open", "Open", id="connections-open", priority=True,
                tooltip="Open the connection: details, setup, goals, schedule, history"),
        Binding("r", "run", "Run", id="connections-run", tooltip="Run the connection now"),
        Binding("R", "run_with_options", "Run…", id="connections-run-options", show=False,
                tooltip="Run one goal, a full resync or a dry run"),
        Binding("slash", "filter", "Filter", id="connections-filter",
                tooltip="Filter by name or label"),
        Binding("n", "new", "New", id="connections-new", tooltip="Add a connection"),
        Binding("f", "favorite", "★", id="connections-favorite",
                tooltip="Mark or unmark the connection as a favourite"),
        Binding("c", "copy", "Copy", id="connections-copy", show=False,
                tooltip="Copy the connection (the copy starts switched off, with no history)"),
        Binding("e,f2", "rename", "Rename", id="connections-rename", show=False,
                tooltip="Rename the connection (its history goes with it)"),
        Binding("d,delete", "delete", "Delete", id="connections-delete", show=False,
                tooltip="Delete the connection from connections.toml"),
        Binding("v", "view_run", "Run panel", id="connections-view-run", show=False,
                tooltip="Follow the connection's current run, or see its last one"),
        Binding("x", "cancel_run", "Cancel run", id="connections-cancel-run", show=False,
                tooltip="Stop the connection's running run"),
        Binding("s", "app.open_segments", "Segments", id="open-segments", show=False,
                tooltip="Local segments with live member counts"),
        Binding("p", "app.open_profiles", "Profiles", id="open-profiles", show=False,
                tooltip="Find a profile by any identifier or value"),
        Binding("escape", "clear_filter", "Clear filter", id="connections-clear-filter",
                show=False),
        Binding("q", "app.quit", "Quit", id="quit", tooltip="Quit (runs keep going)"),
    ]  # fmt: skip

    def __init__(self) -> None:
        super().__init__()
        self.filter_text = ""
        self._had_rows = True
        self.launched: dict[str, RunHandle] = {}
        """The runs started from this screen, by connection: `v` follows one at once."""

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Label(self._header(), id="connections-header")
        with Vertical(id="connections-box") as box:
            box.border_title = "Connections"
            yield Input(placeholder="filter: name or label", id="connections-filter")
            yield ConnectionTable(id="connections")
            yield Label("", id="connections-empty")
        yield RunStrip(id="run-strip")
        yield Footer()

    # Actions on the highlighted connection are greyed out while there is none.
    _ROW_ACTIONS = frozenset({
        "open", "toggle_connection", "run", "run_with_options", "favorite", "copy", "rename",
        "delete", "view_run", "cancel_run",
    })  # fmt: skip

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self._ROW_ACTIONS and not self.table.names:
            return None
        return True

    def _header(self) -> Text:
        config = str(self.bctui.paths.config)
        home = str(Path.home())
        if config.startswith(home + "/"):
            config = "~" + config[len(home) :]
        store = self.bctui.config.store.url.removeprefix("sqlite:///")
        room = max(20, self.size.width - len(store) - 22) if self.size.width else 60
        if len(config) > room:
            config = "…" + config[-(room - 1) :]
        return Text(f" bctui ─ {config} ─ store: {store}")  # a path is not markup

    def on_mount(self) -> None:
        self.query_one("#connections-filter", Input).display = False
        self.bctui.config_changed.subscribe(self, self._config_changed)
        self._show_rows()

    def on_screen_suspend(self) -> None:
        # Under another screen, every message handled here repaints all of the screen on top
        # (Textual redraws covered screens): no polls while covered, catch up on resume.
        self.bctui.runs_changed.unsubscribe(self)

    def on_screen_resume(self) -> None:
        self.bctui.runs_changed.subscribe(self, self._runs_changed)
        self._runs_changed(self.bctui.runs)

    def on_resize(self) -> None:
        self.query_one("#connections-header", Label).update(self._header())

    # -- the table -----------------------------------------------------------------------

    @property
    def table(self) -> ConnectionTable:
        """The connections table."""
        return self.query_one("#connections", ConnectionTable)

    def _config_changed(self, config: Config) -> None:
        self._show_rows()

    def _runs_changed(self, snapshot: RunsSnapshot) -> None:
        self._show_rows()
        self._show_scheduler(snapshot)

    def _show_scheduler(self, snapshot: RunsSnapshot) -> None:
        """Whether anything keeps the schedules, so a "next run" is not a promise nobody keeps."""
        box = self.query_one("#connections-box")
        scheduled = any(
            c.enabled and c.schedule.kind != "manual" for c in self.bctui.config.connections
        )
        if snapshot.scheduler is not None:
            box.border_subtitle = escape(snapshot.scheduler.describe().replace("`", ""))
        elif scheduled:
            box.border_subtitle = "no scheduler running: next runs need `bctui scheduler`"
        else:
            box.border_subtitle = ""

    def shown_connections(self) -> list[Connection]:
        """The connections the filter lets through, favourites first, then by name."""
        folded = self.filter_text.casefold()
        conns = [
            c for c in self.bctui.config.connections
            if not folded or folded in c.name.casefold()
            or any(folded in label.casefold() for label in c.labels)
        ]  # fmt: skip
        return sorted(conns, key=lambda c: (not c.favorite, c.name.casefold()))

    def _show_rows(self) -> None:
        self.table.show(self.shown_connections())
        self._show_empty()
        self._strip_follow()
        if bool(self.table.names) != self._had_rows:  # the row actions turn on or off
            self._had_rows = bool(self.table.names)
            self.refresh_bindings()

    def _show_empty(self) -> None:
        label = self.query_one("#connections-empty", Label)
        if self.table.names:
            label.display = False
            return
        label.display = True
        if self.bctui.config.connections:
            label.update(Text(f'No connection matches "{self.filter_text}" — escape clears it'))
        elif not self.bctui.workspace or not self.bctui.workspace.document.exists:
            label.update(
                "No connections yet, and no connections.toml: press n to add the first "
                "connection (the file is created when you save)."
            )
        else:
            label.update("No connections in connections.toml yet: press n to add one.")

    def selected_name(self) -> str | None:
        """The highlighted connection's name, if any."""
        return self.table.selected_name()

    def selected(self) -> Connection | None:
        """The highlighted connection."""
        name = self.selected_name()
        return self.bctui.config.connection(name) if name else None

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._strip_follow()

    def _strip_follow(self) -> None:
        self.query_one(RunStrip).show(self.selected_name())

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()  # a click on a row

    # -- filter --------------------------------------------------------------------------

    def action_filter(self) -> None:
        """Show the filter input."""
        field = self.query_one("#connections-filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#connections-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value.strip()
        self._show_rows()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter."""
        field = self.query_one("#connections-filter", Input)
        if not field.display and not self.filter_text:
            return
        field.value = ""
        field.display = False
        self.filter_text = ""
        self._show_rows()
        self.table.focus()

    # -- edits ---------------------------------------------------------------------------

    def _replace(self, conn: Connection, new: Connection, done: str) -> bool:
        base = self.bctui.config
        config = dataclasses.replace(
            base, connections=tuple(new if c.name == conn.name else c for c in base.connections)
        )
        return not self.bctui.try_save(base, config, done=done)

    def action_toggle_connection(self) -> None:
        """Switch the connection on or off."""
        conn = self.selected()
        if conn is None:
            return
        state = "off" if conn.enabled else "on"
        self._replace(conn, dataclasses.replace(conn, enabled=not conn.enabled),
                      f'"{conn.name}" switched {state}')  # fmt: skip

    def action_favorite(self) -> None:
        """Mark or unmark as favourite."""
        conn = self.selected()
        if conn is None:
            return
        self._replace(conn, dataclasses.replace(conn, favorite=not conn.favorite), "")

    def action_open(self) -> None:
        """Open the connection's screen (in the filter: back to the table)."""
        if isinstance(self.focused, Input):
            self.table.focus()
            return
        conn = self.selected()
        if conn is None:
            return
        from bctui.tui.screens.connection import ConnectionScreen

        self.app.push_screen(ConnectionScreen(conn.name))

    def _name_problem(self, name: str, current: str = "") -> str:
        existing = self.bctui.config.connection(name)
        if existing is not None and existing.name.casefold() != current.casefold():
            return f'a connection named "{existing.name}" exists; choose another name'
        return ""

    @work(exit_on_error=False)
    async def action_new(self) -> None:
        """Add a connection, then open its setup."""
        name = await self.app.push_screen_wait(
            PromptModal(
                "New connection",
                placeholder="name, e.g. Braze main",
                detail="Then set up its Braze key and S3 bucket, and add goals.",
                check=self._name_problem,
            )
        )
        if name is None:
            return
        base = self.bctui.config
        # A name no other connection uses, nor a deleted one left in the secrets file.
        taken = _secret_refs(base)
        if self.bctui.workspace is not None:
            with contextlib.suppress(BctuiError):  # an unreadable file says so at the first save
                taken.update(self.bctui.workspace.secrets.names())
        secret_name = secret_name_for(name, "braze", taken)
        conn = Connection(name, BrazeSettings(DEFAULT_ENDPOINT, f"secret:{secret_name}"))
        config = dataclasses.replace(base, connections=(*base.connections, conn))
        if self.bctui.try_save(base, config, done=f'"{name}" added'):
            return
        from bctui.tui.screens.connection import ConnectionScreen

        self.app.push_screen(ConnectionScreen(name, tab="setup"))

    @work(exit_on_error=False)
    async def action_copy(self) -> None:
        """Copy the connection under a new name."""
        conn = self.selected()
        if conn is None:
            return
        name = await self.app.push_screen_wait(
            PromptModal(
                f'Copy "{conn.name}"',
                value=f"{conn.name} copy",
                detail="The copy starts switched off and with no history: its first export "
                "sends every profile of its segments.",
                check=self._name_problem,
            )
        )
        if name is None:
            return
        base = self.bctui.config
        copy = dataclasses.replace(conn, name=name, enabled=False, favorite=False)
        config = dataclasses.replace(base, connections=(*base.connections, copy))
        self.bctui.try_save(
            base, config, done=f'copied as "{name}" (off; its first export sends everything)'
        )

    @work(exit_on_error=False)
    async def action_rename(self) -> None:
        """Rename the connection; its run history, watermarks and sent values follow it."""
        conn = self.selected()
        if conn is None:
            return
        from bctui.engine.rename import history_blocker, rename_connection

        workspace = self.bctui.workspace
        assert workspace is not None
        paths = self.bctui.paths

        def blocker_of(name: str) -> str:
            with workspace.store() as store:
                return history_blocker(paths, store, name)

        def move_history(old: str, new: str) -> None:
            with workspace.store() as store:
                rename_connection(paths, store, old, new)

        # The store may be busy with a run's write: SQLite waits happen off the event loop.
        blocker = await asyncio.to_thread(blocker_of, conn.name)
        if blocker:
            self.notify(blocker, title="Cannot rename now", severity="error", timeout=8)
            return
        old = conn.name
        name = await self.app.push_screen_wait(
            PromptModal(
                f'Rename "{old}"',
                value=old,
                detail="Run history, watermarks and what was last sent move to the new name.",
                check=lambda text: self._name_problem(text, old),
            )
        )
        if name is None or name == old:
            return
        base = self.bctui.config
        current = base.connection(old)
        if current is None:  # deleted or renamed on disk while the prompt was open
            self.notify(f'"{old}" is no longer in connections.toml; nothing renamed',
                        severity="error")  # fmt: skip
            return
        config = dataclasses.replace(base, connections=tuple(
            dataclasses.replace(c, name=name) if c is current else c for c in base.connections
        ))  # fmt: skip
        try:
            await asyncio.to_thread(move_history, old, name)
        except BctuiError as exc:
            self.notify(exc.render(), title="Not renamed", severity="error", timeout=8)
            return
        if self.bctui.try_save(
            base, config, renamed_connections={old: name}, done=f'renamed to "{name}"'
        ):
            # The file was not changed: put the history back under the old name.
            try:
                await asyncio.to_thread(move_history, name, old)
            except BctuiError as exc:
                self.notify(
                    f'the history of "{old}" is now under "{name}": {exc.render()}',
                    title="Rename the connection again to bring it back",
                    severity="error",
                    timeout=15,
                )

    @work(exit_on_error=False)
    async def action_delete(self) -> None:
        """Delete the connection after a confirmation."""
        conn = self.selected()
        if conn is None:
            return
        if conn.name in self.bctui.runs.running:
            self.notify(f'"{conn.name}" is running; cancel its run first (x)', severity="error")
            return
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                f'Delete "{conn.name}"?',
                f"Its {len(conn.goals)} goal(s) and settings are removed from connections.toml. "
                "Run history and secrets stay.",
                yes="Delete",
            )
        )
        if not sure:
            return
        base = self.bctui.config
        current = base.connection(conn.name)
        if current is None:
            self.notify(f'"{conn.name}" is no longer in connections.toml', severity="warning")
            return
        config = dataclasses.replace(
            base, connections=tuple(c for c in base.connections if c is not current)
        )
        self.bctui.try_save(base, config, done=f'"{conn.name}" deleted')

    # -- runs ----------------------------------------------------------------------------

    def action_run(self) -> None:
        """Run the connection now, as its own process."""
        conn = self.selected()
        if conn is not None:
            self.start_run(conn, RunOptions())

    @work(exit_on_error=False)
    async def action_run_with_options(self) -> None:
        """Run one goal, a full resync or a dry run."""
        conn = self.selected()
        if conn is None:
            return
        from bctui.tui.screens.run_options import RunOptionsModal

        options = await self.app.push_screen_wait(RunOptionsModal(conn))
        if options is not None:
            self.start_run(conn, options)

    def start_run(self, conn: Connection, options: RunOptions) -> None:
        """Launch a run (refused while one is going)."""
        if conn.name in self.bctui.runs.running or self._starting(conn.name):
            self.notify(f'"{conn.name}" is already running — v follows it', severity="warning")
            return
        if not conn.goals:
            self.notify(
                f'"{conn.name}" has no goals yet: open it (enter) and add one',
                severity="warning",
            )
            return
        self._launch(conn.name, options)

    def _starting(self, name: str) -> bool:
        """A run launched from here whose process lives but that no poll has seen yet."""
        handle = self.launched.get(name)
        latest = self.bctui.runs.latest.get(name)
        return (
            handle is not None
            and (latest is None or latest.started_at < handle.started_at)
            and history.pid_alive(handle.pid)
        )

    @work(thread=True, exit_on_error=False, group="launch")
    def _launch(self, name: str, options: RunOptions) -> None:
        handle: RunHandle = launch_run(self.bctui.paths, name, options, started_by="ui")
        kind = " (dry run)" if options.dry_run else ""
        self.app.call_from_thread(self._launched, handle, kind)

    def _launched(self, handle: RunHandle, kind: str) -> None:
        self.launched[handle.connection] = handle
        self.notify(f'run {handle.run_id} of "{handle.connection}" started{kind} — v follows it')
        self.bctui.poll_runs()

    def action_view_run(self) -> None:
        """Open the run panel for the highlighted connection."""
        name = self.selected_name()
        if name is None:
            return
        from bctui.tui.screens.run import RunScreen

        handle = self.launched.get(name)
        latest = self.bctui.runs.latest.get(name)
        if handle is not None and (latest is None or latest.started_at < handle.started_at):
            # Launched a moment ago, before a poll saw it: follow that run, not the last one.
            self.app.push_screen(RunScreen(name, handle.run_id, pid=handle.pid))
            return
        if name not in self.bctui.runs.running and latest is None:
            self.notify(f'"{name}" has not run yet — r runs it', severity="warning")
            return
        self.app.push_screen(RunScreen(name))

    @work(exit_on_error=False)
    async def action_cancel_run(self) -> None:
        """Cancel the connection's running run after a confirmation."""
        name = self.selected_name()
        if name is None or name not in self.bctui.runs.running:
            self.notify("nothing is running here", severity="warning")
            return
        holder = self.bctui.runs.running[name]
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                f'Cancel run {holder.run_id} of "{name}"?',
                "What it has already committed is kept; the next run carries on from there.",
                yes="Cancel run",
            )
        )
        if not sure:
            return
        try:
            history.cancel_run(self.bctui.paths, name, holder.run_id)
        except BctuiError as exc:
            self.notify(exc.render(), severity="error")
            return
        self.notify(f"cancelling run {holder.run_id}…")


def _secret_refs(config: Config) -> set[str]:
    """The `secret:NAME` names the config refers to."""
    refs: set[str] = set()
    for conn in config.connections:
        values = [conn.braze.api_key]
        if conn.s3 is not None:
            values += [conn.s3.access_key_id, conn.s3.secret_access_key]
        refs.update(v.removeprefix("secret:") for v in values if v.startswith("secret:"))
    return refs
