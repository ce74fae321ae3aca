"""The History tab of a connection: its runs, newest first, with per-goal counts; read in a
worker and refreshed when the app's run poll sees this connection change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Label

from bctui.engine.runs import history
from bctui.engine.runs import state as st
from bctui.engine.runs.describe import short_counts
from bctui.tui.format import duration, short_time

if TYPE_CHECKING:
    from bctui.tui.app import BctuiApp, RunsSnapshot

LIMIT = 200
STATE_MARKS = {
    history.RunStatus.RUNNING: ("⟳ running", "accent"),
    history.RunStatus.INTERRUPTED: ("⚠ interrupted", "warning"),
    history.RunStatus.FINISHED: ("✓ finished", "success"),
    history.RunStatus.FAILED: ("✗ failed", "error"),
    history.RunStatus.CANCELLED: ("⊘ cancelled", "warning"),
}


@dataclass(frozen=True)
class RunRow:
    """One run as the table shows it."""

    record: st.RunRecord
    status: history.RunStatus
    goals: list[st.GoalState]


@dataclass
class RunsLoaded(Message):
    """The connection's runs, read by the worker."""

    connection: str
    rows: list[RunRow]


class RunHistory(Vertical):
    """A connection's runs: state, who started it, when, how long, what each goal did."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("v", "view_run", "Run panel", id="history-view-run",
                tooltip="Follow the highlighted run live in the run panel"),
        Binding("ctrl+r", "reload", "Reload", id="history-reload", show=False,
                tooltip="Read the run history again"),
    ]  # fmt: skip

    def __init__(self, connection: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.connection = connection
        self.rows: list[RunRow] = []
        self._signature: object = None

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        from bctui.tui.app import BctuiApp

        assert isinstance(self.app, BctuiApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield DataTable(id="history-table", cursor_type="row")
        yield Label("", id="history-empty")
        yield Label("enter log and details · v live run panel", id="history-keys")

    def on_mount(self) -> None:
        table = self.query_one("#history-table", DataTable)
        for key, label in (
            ("state", "State"), ("by", "By"), ("start", "Started"), ("duration", "Took"),
            ("goals", "Goals"), ("dp", "Data points"), ("mode", "Mode"),
        ):  # fmt: skip
            table.add_column(label, key=key)
        self.query_one("#history-empty", Label).display = False
        self.bctui.runs_changed.subscribe(self, self._runs_changed)
        self.reload()

    def _runs_changed(self, snapshot: RunsSnapshot) -> None:
        latest = snapshot.latest.get(self.connection)
        running = snapshot.running.get(self.connection)
        signature = (
            latest.id if latest else None,
            latest.state if latest else None,
            running.run_id if running else None,
        )
        # A running run's counts move on every poll; otherwise read only on a change.
        if running is not None or signature != self._signature:
            self._signature = signature
            self.reload()

    def action_reload(self) -> None:
        """Read the runs again."""
        self.reload()

    def reload(self) -> None:
        """Read the connection's runs in a worker."""
        self._load(self.connection)

    @work(thread=True, exclusive=True, exit_on_error=False, group="history")
    def _load(self, connection: str) -> None:
        workspace = self.bctui.workspace
        assert workspace is not None
        paths = workspace.paths
        with workspace.store() as store:
            records = st.list_runs(store, connection, LIMIT)
            rows = [
                RunRow(r, history.run_status(paths, r), st.goal_states(store, r.id))
                for r in records
            ]
        self.post_message(RunsLoaded(connection, rows))

    @on(RunsLoaded)
    def _loaded(self, message: RunsLoaded) -> None:
        if message.connection != self.connection:
            return
        self.rows = message.rows
        table = self.query_one("#history-table", DataTable)
        selected = self.selected()
        table.clear()
        now = self.bctui.clock()
        theme = self.app.theme_variables
        for row in self.rows:
            record = row.record
            text, color = STATE_MARKS.get(row.status, (row.status.value, "text"))
            end = record.ended_at or (now if row.status is history.RunStatus.RUNNING else None)
            took = duration(end - record.started_at) if end else "—"
            goals = "; ".join(
                f"{g.goal}: {short_counts(g.counts, 0) or g.state.lower()}" for g in row.goals
            )
            data_points = sum(g.data_points for g in row.goals)
            mode = " ".join(m for m, on in (("dry", record.dry_run), ("full", record.full)) if on)
            table.add_row(
                Text(text, style=theme.get(color, "")),
                record.started_by,
                short_time(record.started_at, now),
                took,
                goals or "—",
                f"{data_points:,}",
                mode,
                key=record.id,
            )
        ids = [r.record.id for r in self.rows]
        if selected is not None and selected.record.id in ids:
            table.move_cursor(row=ids.index(selected.record.id))
        empty = self.query_one("#history-empty", Label)
        empty.display = not self.rows
        empty.update("No runs yet: r on the connections list runs it now.")

    def selected(self) -> RunRow | None:
        """The highlighted run."""
        row = self.query_one("#history-table", DataTable).cursor_row
        return self.rows[row] if 0 <= row < len(self.rows) else None

    @on(DataTable.RowSelected, "#history-table")
    def _open(self, event: DataTable.RowSelected) -> None:
        row = self.selected()
        if row is None:
            return
        from bctui.tui.screens.run_detail import RunDetailScreen

        self.app.push_screen(RunDetailScreen(row.record.id))

    def action_view_run(self) -> None:
        """Open the live run panel for the highlighted run."""
        row = self.selected()
        if row is None:
            return
        if row.status is not history.RunStatus.RUNNING:
            self.notify("that run is not running — enter shows its log", severity="warning")
            return
        from bctui.tui.screens.run import RunScreen

        self.app.push_screen(RunScreen(self.connection, row.record.id))
