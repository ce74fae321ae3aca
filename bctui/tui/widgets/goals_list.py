"""The Goals tab of a connection: imports then exports (the order they run in), each with its
switch and a one-line summary; edits save at once, like the connections table."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, TypeVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import DataTable, Label
from textual.worker import WorkerFailed

from bctui.engine.models import (
    Audience,
    Connection,
    ExportGoal,
    Goal,
    ImportGoal,
)
from bctui.engine.summary import goal_summary
from bctui.errors import BctuiError
from bctui.tui.screens.confirm import ConfirmModal, PromptModal

if TYPE_CHECKING:
    from bctui.tui.app import BctuiApp

R = TypeVar("R")


def run_order(goals: tuple[Goal, ...]) -> list[Goal]:
    """Imports before exports, each in file order: the order a run takes them in."""
    return [g for g in goals if g.type == "import"] + [g for g in goals if g.type == "export"]


class GoalsList(Vertical):
    """The goals of one connection, with keys to add, open, copy, rename, move, toggle, delete."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_goal", "On/off", id="goals-toggle",
                tooltip="Switch the highlighted goal on or off (runs skip goals that are off)"),
        Binding("i", "add_import", "Add import", id="goals-add-import",
                tooltip="Add an import goal (Braze segment → profile store)"),
        Binding("x", "add_export", "Add export", id="goals-add-export",
                tooltip="Add an export goal (local segment → Braze)"),
        Binding("c", "copy", "Copy", id="goals-copy", show=False,
                tooltip="Copy the goal (the copy has no history: its first export sends "
                "everything)"),
        Binding("e", "rename", "Rename", id="goals-rename", show=False,
                tooltip="Rename the goal (its watermark and history follow it)"),
        Binding("d,delete", "delete", "Delete", id="goals-delete", show=False,
                tooltip="Delete the goal from connections.toml"),
        Binding("left_square_bracket", "move(-1)", "Move up", id="goals-move-up", show=False,
                tooltip="Move the goal up (within imports, or within exports)"),
        Binding("right_square_bracket", "move(1)", "Move down", id="goals-move-down",
                show=False, tooltip="Move the goal down (within imports, or within exports)"),
    ]  # fmt: skip

    def __init__(self, connection: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.connection = connection
        self._names: list[str] = []

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        from bctui.tui.app import BctuiApp

        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield DataTable(id="goals-table", cursor_type="row")
        yield Label("", id="goals-empty")
        yield Label(
            "enter open · c copy · e rename · [ ] move · d delete · ? all keys",
            id="goals-keys",
        )

    def on_mount(self) -> None:
        table = self.table
        for key, label in (("type", "Type"), ("name", "Name"), ("on", "On"),
                           ("summary", "Summary")):  # fmt: skip
            table.add_column(label, key=key)

    @property
    def table(self) -> DataTable[object]:
        """The goals table."""
        return self.query_one("#goals-table", DataTable)

    def conn(self) -> Connection | None:
        """The connection as it is now in the config."""
        return self.bctui.config.connection(self.connection)

    def load(self, conn: Connection) -> None:
        """Show `conn`'s goals, keeping the cursor on the same goal."""
        self.connection = conn.name
        table = self.table
        selected = self.selected_name()
        table.clear()
        theme = self.app.theme_variables
        self._names = []
        for goal in run_order(conn.goals):
            on = (
                Text("●━", style=theme.get("success", "green"))
                if goal.enabled
                else Text("━○", style=theme.get("text-muted", "grey50"))
            )
            kind = Text("import ←", style=theme.get("accent", "cyan")) if goal.type == "import" \
                else Text("export →")  # fmt: skip
            # Names and summaries (segment names, properties) are the user's words, not markup.
            table.add_row(kind, Text(goal.name), on, Text(goal_summary(goal)), key=goal.name)
            self._names.append(goal.name)
        if selected in self._names:
            table.move_cursor(row=self._names.index(selected))
        empty = self.query_one("#goals-empty", Label)
        empty.display = not self._names
        empty.update("No goals yet: i adds an import (Braze → store), x an export (store → Braze).")

    def selected_name(self) -> str | None:
        """The highlighted goal's name."""
        row = self.table.cursor_row
        return self._names[row] if 0 <= row < len(self._names) else None

    def selected(self) -> Goal | None:
        """The highlighted goal."""
        conn, name = self.conn(), self.selected_name()
        return conn.goal(name) if conn is not None and name else None

    # -- saving ------------------------------------------------------------------------------

    def _save(self, goals: tuple[Goal, ...], done: str, **kwargs: object) -> bool:
        base = self.bctui.config
        conn = base.connection(self.connection)
        if conn is None:
            return False
        new = dataclasses.replace(conn, goals=goals)
        config = dataclasses.replace(
            base, connections=tuple(new if c is conn else c for c in base.connections)
        )
        return not self.bctui.try_save(base, config, done=done, **kwargs)  # type: ignore[arg-type]

    def _name_problem(self, name: str, current: str = "") -> str:
        conn = self.conn()
        existing = conn.goal(name) if conn else None
        if existing is not None and existing.name.casefold() != current.casefold():
            return f'this connection has a goal named "{existing.name}"; choose another name'
        return ""

    # -- actions -----------------------------------------------------------------------------

    def action_toggle_goal(self) -> None:
        """Switch the goal on or off."""
        conn, goal = self.conn(), self.selected()
        if conn is None or goal is None:
            return
        flipped = dataclasses.replace(goal, enabled=not goal.enabled)
        state = "on" if flipped.enabled else "off"
        self._save(tuple(flipped if g is goal else g for g in conn.goals),
                   f'goal "{goal.name}" switched {state}')  # fmt: skip

    @on(DataTable.RowSelected, "#goals-table")
    def _row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        """Open the goal's editor."""
        goal = self.selected()
        if goal is not None:
            self._open_editor(goal.name, None, goal.type)

    def _open_editor(self, name: str | None, draft: Goal | None, kind: str) -> None:
        try:
            if kind == "import":
                from bctui.tui.screens.import_goal import ImportGoalScreen

                assert draft is None or isinstance(draft, ImportGoal)
                self.app.push_screen(ImportGoalScreen(self.connection, name, draft=draft))
            else:
                from bctui.tui.screens.export_goal import ExportGoalScreen

                assert draft is None or isinstance(draft, ExportGoal)
                self.app.push_screen(ExportGoalScreen(self.connection, name, draft=draft))
        except ImportError:
            self.notify("the goal editor is not available in this build", severity="error")

    @work(exit_on_error=False, group="goals-prompt")
    async def action_add_import(self) -> None:
        """Name a new import goal, then set it up in the editor (saved from there)."""
        await self._add("import")

    @work(exit_on_error=False, group="goals-prompt")
    async def action_add_export(self) -> None:
        """Name a new export goal, then set it up in the editor (saved from there)."""
        await self._add("export")

    async def _add(self, kind: str) -> None:
        if self.conn() is None:
            return
        what = "Braze segment → profile store" if kind == "import" else "local segment → Braze"
        name = await self.app.push_screen_wait(
            PromptModal(
                f"New {kind} goal",
                placeholder="name, e.g. " + ("Braze test users" if kind == "import"
                                              else "VIPs to Braze"),
                detail=f"{what}. The goal editor opens next; the goal is saved from there.",
                check=self._name_problem,
            )
        )  # fmt: skip
        if name is None:
            return
        draft: Goal
        if kind == "import":
            # An audience and identifiers are required: the editor fills them before saving.
            draft = ImportGoal(name, Audience(""), ())
        else:
            segments = self.bctui.config.segments
            draft = ExportGoal(name, segments[0].name if segments else "", ())
        self._open_editor(None, draft, kind)

    @work(exit_on_error=False, group="goals-prompt")
    async def action_copy(self) -> None:
        """Copy the goal under a new name, right after it."""
        conn, goal = self.conn(), self.selected()
        if conn is None or goal is None:
            return
        first = (
            "its first export sends every profile of the segment"
            if goal.type == "export"
            else "its first run requests a new export from Braze"
        )
        name = await self.app.push_screen_wait(
            PromptModal(
                f'Copy goal "{goal.name}"',
                value=f"{goal.name} copy",
                detail=f"The copy has no history: {first}.",
                check=self._name_problem,
            )
        )
        if name is None:
            return
        conn = self.conn()
        original = conn.goal(goal.name) if conn is not None else None
        if conn is None or original is None:
            return
        copy: Goal = dataclasses.replace(original, name=name)
        goals: list[Goal] = []
        for g in conn.goals:
            goals.append(g)
            if g is original:
                goals.append(copy)
        self._save(tuple(goals), f'copied as "{name}" ({first})')

    @work(exit_on_error=False, group="goals-prompt")
    async def action_rename(self) -> None:
        """Rename the goal; its watermark, sent values and run history follow."""
        goal = self.selected()
        if goal is None:
            return
        try:
            blocker = await self._in_thread(self._history_blocker, self.connection)
        except BctuiError as exc:
            self.notify(exc.render(), title="Cannot rename now", severity="error", timeout=8)
            return
        if blocker:
            self.notify(blocker, title="Cannot rename now", severity="error", timeout=8)
            return
        name = await self.app.push_screen_wait(
            PromptModal(
                f'Rename goal "{goal.name}"',
                value=goal.name,
                detail="Its watermark, what it last sent and its run history move to the new name.",
                check=lambda text: self._name_problem(text, goal.name),
            )
        )
        if name is None or name == goal.name:
            return
        conn = self.conn()
        current = conn.goal(goal.name) if conn else None
        if conn is None or current is None:
            return
        try:
            await self._in_thread(self._rename_history, conn.name, current.name, name)
        except BctuiError as exc:
            self.notify(exc.render(), title="Not renamed", severity="error", timeout=8)
            return
        # The store moved: save the file on what it is now (it may have been reloaded meanwhile).
        conn = self.conn()
        current = conn.goal(goal.name) if conn else None
        saved = conn is not None and current is not None and self._save(
            tuple(dataclasses.replace(current, name=name) if g is current else g
                  for g in conn.goals),
            f'goal renamed to "{name}"',
            renamed_goals={(conn.name, current.name): name},
        )  # fmt: skip
        if saved:
            return
        # The file was not changed: put the history back under the old name.
        try:
            await self._in_thread(self._rename_history, self.connection, name, goal.name)
        except BctuiError as exc:
            self.notify(
                f'{exc.render()}\nThe goal\'s history is under "{name}" in the store while the '
                f'file still says "{goal.name}": rename it again to match.',
                title="History not moved back",
                severity="error",
                timeout=15,
            )

    async def _in_thread(self, work_: Callable[..., R], *args: str) -> R:
        """`work_(*args)` in a thread worker (SQLite can wait on a lock for a minute)."""
        try:
            result = await self._thread(work_, *args).wait()
        except WorkerFailed as failed:  # not a BctuiError: the app has reported it already
            raise BctuiError(f"{type(failed.error).__name__}: {failed.error}") from None
        if isinstance(result, BctuiError):
            raise result
        return result

    @work(thread=True, exit_on_error=False, group="goals-store")
    def _thread(self, work_: Callable[..., object], *args: str) -> object:
        # A BctuiError is handed back (the caller words it), not left to the app's handler.
        try:
            return work_(*args)
        except BctuiError as exc:
            return exc

    def _history_blocker(self, connection: str) -> str:
        from bctui.engine.rename import history_blocker

        workspace = self.bctui.workspace
        assert workspace is not None
        with workspace.store() as store:
            return history_blocker(workspace.paths, store, connection)

    def _rename_history(self, connection: str, old: str, new: str) -> None:
        from bctui.engine.rename import rename_goal

        workspace = self.bctui.workspace
        assert workspace is not None
        with workspace.store() as store:
            rename_goal(workspace.paths, store, connection, old, new)

    @work(exit_on_error=False, group="goals-prompt")
    async def action_delete(self) -> None:
        """Delete the goal after a confirmation."""
        goal = self.selected()
        if goal is None:
            return
        sure = await self.app.push_screen_wait(
            ConfirmModal(
                f'Delete goal "{goal.name}"?',
                "It is removed from connections.toml. Its history stays in the state directory.",
                yes="Delete",
            )
        )
        conn = self.conn()
        if not sure or conn is None:
            return
        self._save(
            tuple(g for g in conn.goals if g.name != goal.name), f'goal "{goal.name}" deleted'
        )

    def action_move(self, step: int) -> None:
        """Move the goal up or down among the goals of its type."""
        conn, goal = self.conn(), self.selected()
        if conn is None or goal is None:
            return
        goals = list(conn.goals)
        same = [i for i, g in enumerate(goals) if g.type == goal.type]
        at = same.index(goals.index(goal))
        to = at + step
        if not 0 <= to < len(same):
            return
        i, j = same[at], same[to]
        goals[i], goals[j] = goals[j], goals[i]
        if self._save(tuple(goals), ""):
            self.table.move_cursor(row=self._names.index(goal.name))
