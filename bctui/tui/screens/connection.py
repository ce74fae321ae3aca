"""One connection, in tabs: Details, Setup, Goals, Schedule, History.

Details, Setup and Schedule are forms saved together with ctrl+s (one save, every field applied,
each problem under its field); Goals and History act at once, like the connections table.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, TabbedContent, TabPane

from bctui.engine.config import ConfigError, Issue, parse_config
from bctui.engine.config_write import to_toml
from bctui.engine.models import Config, Connection
from bctui.engine.schedule import describe_schedule
from bctui.errors import BctuiError
from bctui.secret import Secret
from bctui.tui.app import BctuiApp
from bctui.tui.screens.confirm import ConfirmModal
from bctui.tui.widgets.details_form import ConnectionForm, DetailsForm, Problems, merge_edits
from bctui.tui.widgets.goals_list import GoalsList
from bctui.tui.widgets.run_history import RunHistory
from bctui.tui.widgets.schedule_form import ScheduleForm
from bctui.tui.widgets.setup_form import SetupForm

TABS = ("details", "setup", "goals", "schedule", "history")
VALIDATE_DELAY = 0.3


def validate(config: Config) -> list[Issue]:
    """What `bctui validate` would say about `config` once written (nothing is written)."""
    try:
        parse_config(to_toml(config))
    except ConfigError as exc:
        return list(exc.issues)
    except OSError:
        # zoneinfo reads a folder name ("Europe") as a file; the form reports that zone itself.
        return []
    return []


class ConnectionScreen(Screen[None]):
    """Everything about one connection."""

    CSS_PATH = "connection.tcss"
    HELP_TITLE = "Connection"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="connection-back",
                tooltip="Back to the connections (asks first when there are unsaved changes)"),
        Binding("ctrl+s", "save", "Save", id="connection-save",
                tooltip="Save the Details, Setup and Schedule tabs (all at once)"),
        Binding("f2", "tab('details')", "Details", id="connection-tab-details", show=False,
                tooltip="Name, favourite, on/off, labels, description, notifications"),
        Binding("f3", "tab('setup')", "Setup", id="connection-tab-setup", show=False,
                tooltip="Braze instance and API key, S3 bucket and credentials"),
        Binding("f4", "tab('goals')", "Goals", id="connection-tab-goals", show=False,
                tooltip="Import and export goals: add, open, copy, rename, move, switch"),
        Binding("f5", "tab('schedule')", "Schedule", id="connection-tab-schedule", show=False,
                tooltip="When the connection runs by itself, and its next run times"),
        Binding("f6", "tab('history')", "History", id="connection-tab-history", show=False,
                tooltip="The connection's runs; enter opens a run's log"),
    ]  # fmt: skip

    def __init__(self, name: str, tab: str = "details") -> None:
        super().__init__()
        self.connection = name
        self.initial_tab = tab if tab in TABS else "details"
        self.dirty = False
        self.closing = False
        self.ready = False
        """True once the tabs are filled (tests wait for it)."""
        self._validate_timer: Timer | None = None
        self._loaded: Connection | None = None
        """The connection as the forms last loaded it (what their edits are measured against)."""

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        assert isinstance(self.app, BctuiApp)
        return self.app

    def conn(self) -> Connection | None:
        """The connection as saved."""
        return self.bctui.config.connection(self.connection)

    def compose(self) -> ComposeResult:
        yield Label("", id="connection-header")
        with TabbedContent(initial=self.initial_tab, id="connection-tabs"):
            with TabPane("Details F2", id="details"):
                yield DetailsForm(self.connection, id="details-form")
            with TabPane("Setup F3", id="setup"):
                yield SetupForm(self.connection, id="setup-form")
            with TabPane("Goals F4", id="goals"):
                yield GoalsList(self.connection, id="goals-list")
            with TabPane("Schedule F5", id="schedule"):
                yield ScheduleForm(self.connection, id="schedule-form")
            with TabPane("History F6", id="history"):
                yield RunHistory(self.connection, id="run-history")
        yield Label("", id="connection-problem", classes="field-error")
        yield Footer()

    @property
    def forms(self) -> list[ConnectionForm]:
        """The forms ctrl+s saves."""
        return [
            self.query_one(DetailsForm),
            self.query_one(SetupForm),
            self.query_one(ScheduleForm),
        ]

    def on_mount(self) -> None:
        # The tabs' panes mount after the screen does: fill them once they are there.
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        self.query_one(ScheduleForm).clock = self.bctui.clock
        self.bctui.config_changed.subscribe(self, self._config_changed)
        conn = self.conn()
        if conn is None:
            self._gone()
            return
        self._load(conn)
        self._focus_tab(self.initial_tab)
        self.ready = True

    def _load(self, conn: Connection) -> None:
        self.connection = conn.name
        self._loaded = conn
        for form in self.forms:
            form.load(conn)
            form.show_problems({})
        self.query_one(SetupForm).needed = _needed(conn)
        self.query_one(GoalsList).load(conn)
        self.query_one("#connection-problem", Label).display = False
        self.dirty = False
        self._header(conn)

    def _header(self, conn: Connection) -> None:
        state = "on" if conn.enabled else "off"
        unsaved = "  ● unsaved changes (ctrl+s saves)" if self.dirty else ""
        header = self.query_one("#connection-header", Label)
        text = f" {conn.name} ─ {state} ─ {describe_schedule(conn.schedule)} ─ esc back{unsaved}"
        if str(header.content) != text:
            header.update(Content(text))  # the name and schedule are the user's words
        header.set_class(self.dirty, "-dirty")

    def _config_changed(self, config: Config) -> None:
        conn = config.connection(self.connection)
        if conn is None:
            self._gone()
            return
        self.query_one(GoalsList).load(conn)
        self.query_one(SetupForm).needed = _needed(conn)
        if not self.dirty:
            self._load(conn)
        else:
            self._header(conn)

    def _gone(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.notify(
            f'"{self.connection}" is no longer in connections.toml (deleted or renamed on disk)',
            severity="warning",
            timeout=8,
            markup=False,
        )
        # Covered (a goal editor on top): leave when shown again, not by popping the top screen.
        if self.app.screen is self:
            self.app.pop_screen()

    def on_screen_resume(self) -> None:
        if self.closing and self.app.screen is self:
            self.app.pop_screen()
            return
        for history in self.query(RunHistory):
            history.resume()

    def on_screen_suspend(self) -> None:
        for history in self.query(RunHistory):
            history.pause()

    # -- tabs ----------------------------------------------------------------------------

    def action_tab(self, tab: str) -> None:
        """Show a tab and focus its first field."""
        self.query_one(TabbedContent).active = tab
        self.call_after_refresh(self._focus_tab, tab)

    def _focus_tab(self, tab: str) -> None:
        pane = self.query_one(f"#{tab}", TabPane)
        for widget in pane.query("*"):
            if widget.focusable and widget.display and widget.visible:
                widget.focus()
                return

    # -- editing -------------------------------------------------------------------------

    @on(ConnectionForm.Edited)
    def _edited(self, event: ConnectionForm.Edited) -> None:
        conn = self.conn()
        if conn is None:
            return
        new, problems, secrets = self.candidate(conn)
        self.dirty = bool(problems) or bool(secrets) or new != conn
        self._header(conn)
        if self._validate_timer is not None:
            self._validate_timer.stop()
        self._validate_timer = self.set_timer(VALIDATE_DELAY, self._validate_now)

    def candidate(self, conn: Connection) -> tuple[Connection, Problems, dict[str, Secret]]:
        """`conn` with what the user changed in the forms, local problems, and secrets to store.

        Only the fields edited since the forms loaded are applied: the others keep `conn`'s
        values, which may have changed on disk meanwhile.
        """
        problems: Problems = {}
        loaded = self._loaded or conn
        edited = loaded
        for form in self.forms:
            edited, found = form.apply(edited)
            problems.update(found)
        new = merge_edits(loaded, edited, conn)
        return new, problems, self.query_one(SetupForm).pending_secrets()

    def _validate_now(self) -> None:
        """Show every problem of the fields as they are (live, before saving)."""
        conn = self.conn()
        if conn is None:
            return
        base = self.bctui.config
        new, problems, _ = self.candidate(conn)
        self._show(problems, validate(_replace(base, conn, new)), base.connections.index(conn))

    def _show(self, local: Problems, issues: list[Issue], index: int) -> int:
        """Put each problem under its field; returns how many there are."""
        per_form: list[Problems] = [{} for _ in self.forms]
        general: list[str] = []
        for issue in issues:
            text = f"{issue.message} — {issue.fix}" if issue.fix else issue.message
            path = issue.path
            if len(path) < 2 or path[0] != "connection" or path[1] != index:
                general.append(f"{issue.key}: {text}")
                continue
            for slot, form in zip(per_form, self.forms, strict=True):
                name = form.field_for(tuple(path[2:]))
                if name is not None:
                    slot.setdefault(name, text)
                    break
            else:
                general.append(f"{issue.key}: {text}")
        for slot, form in zip(per_form, self.forms, strict=True):
            for name, text in local.items():
                if name in form.FIELDS:
                    slot.setdefault(name, text)
            form.show_problems(slot)
        problem = self.query_one("#connection-problem", Label)
        problem.update(Content("\n".join(general)))
        problem.display = bool(general)
        return sum(len(s) for s in per_form) + len(general)

    def action_save(self) -> None:
        """Save Details, Setup and Schedule in one go; every problem goes under its field."""
        conn = self.conn()
        if conn is None:
            self._gone()
            return
        base = self.bctui.config
        index = base.connections.index(conn)
        new, problems, secrets = self.candidate(conn)
        config = _replace(base, conn, new)
        count = self._show(problems, validate(config), index)
        if count:
            self.notify(
                f"{count} problem{'s' if count != 1 else ''} — see the messages under the fields",
                title="Not saved",
                severity="error",
            )
            return
        # Secrets first: a config naming a secret that failed to store would not run, while a
        # secret stored for a save that is then refused is harmless (the next save reuses it).
        try:
            for name, value in secrets.items():
                self.bctui.workspace.secrets.set(name, value)  # type: ignore[union-attr]
        except BctuiError as exc:
            self.notify(
                exc.render(), title="Secret not stored", severity="error", timeout=10, markup=False
            )
            return
        if new != conn:
            issues = self.bctui.try_save(base, config)
            if issues:
                self._show({}, issues, index)
                return
            self.notify(f'"{conn.name}" saved', timeout=3, markup=False)
        if secrets:
            self.notify(f"stored as {', '.join('secret:' + n for n in secrets)}", timeout=4)
        elif new == conn:
            self.notify("nothing to save", timeout=2)
        saved = self.conn()
        if saved is not None:
            self._load(saved)

    def action_back(self) -> None:
        """Back to the connections (asks first when there are unsaved changes)."""
        if not self.dirty:
            self.app.pop_screen()
            return
        self._confirm_back()

    @work(exit_on_error=False)
    async def _confirm_back(self) -> None:
        discard = await self.app.push_screen_wait(
            ConfirmModal(
                "Discard unsaved changes?",
                "The Details, Setup or Schedule tab has changes that are not saved "
                "(ctrl+s saves them).",
                yes="Discard",
            )
        )
        if discard:
            self.dirty = False
            self.app.pop_screen()


def _needed(conn: Connection) -> set[str]:
    from bctui.engine.check import needed_permissions

    return needed_permissions(conn)


def _replace(base: Config, old: Connection, new: Connection) -> Config:
    return dataclasses.replace(
        base, connections=tuple(new if c is old else c for c in base.connections)
    )
