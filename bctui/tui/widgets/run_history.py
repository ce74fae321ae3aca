"""The History tab of a connection: its runs, newest first, with per-goal counts; read in a
worker and refreshed when the app's run poll sees this connection change."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import events, on, work
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
WIDE = 120
"""From this width on the table shows who started each run, its data points and mode too."""
COLUMNS = {  # key: (heading, width; 0 = what is left, for the goals)
    "state": ("State", 13), "by": ("By", 9), "start": ("Started", 12), "took": ("Took", 9),
    "goals": ("Goals", 0), "dp": ("Data points", 11), "mode": ("Mode", 8),
}  # fmt: skip
NARROW_KEYS = ("state", "start", "took", "goals")
WIDE_KEYS = ("state", "by", "start", "took", "goals", "dp", "mode")
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
        self.loaded = False
        """True once the runs have been read (until then the table is empty, not "no runs")."""
        self._signature: object = None
        self._layout: tuple[tuple[str, ...], int] = ((), 0)
        """The columns shown and the goals column's width."""
        self._shown: list[tuple[str, tuple[Text, ...]]] = []
        """Each row on screen: run id and cells (rebuilt only where they change)."""

    @property
    def bctui(self) -> BctuiApp:
        """The app, typed."""
        from bctui.tui.app import BctuiApp

        assert isinstance(self.app, BctuiApp)
        return self.app

    @property
    def table(self) -> DataTable[Text]:
        """The runs table."""
        return self.query_one("#history-table", DataTable)

    def compose(self) -> ComposeResult:
        yield DataTable(id="history-table", cursor_type="row")
        yield Label("", id="history-empty")
        yield Label("enter log and details · v live run panel", id="history-keys")

    def on_mount(self) -> None:
        self._show_rows()
        self.resume()

    # -- following the app's run poll (only while the screen is shown) ---------------------

    def pause(self) -> None:
        """Stop following the run poll (the screen is covered)."""
        self.bctui.runs_changed.unsubscribe(self)

    def resume(self) -> None:
        """Follow the run poll again, catching up on what changed meanwhile."""
        if not self.is_mounted:
            return  # on_mount subscribes
        self.bctui.runs_changed.unsubscribe(self)
        self.bctui.runs_changed.subscribe(self, self._runs_changed)
        self._signature = None
        self._runs_changed(self.bctui.runs)

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
                RunRow(r, history.run_status(paths, r, store), st.goal_states(store, r.id))
                for r in records
            ]
        self.post_message(RunsLoaded(connection, rows))

    # -- the table ---------------------------------------------------------------------------

    def _wanted_layout(self) -> tuple[tuple[str, ...], int]:
        width = self.size.width or 80
        keys = WIDE_KEYS if width >= WIDE else NARROW_KEYS
        fixed = sum(COLUMNS[k][1] + 2 for k in keys)  # + the cells' padding
        return keys, max(16, width - fixed - 2 - 1)  # - the goals' padding, the scroll bar

    def on_resize(self, event: events.Resize) -> None:
        if self._wanted_layout() != self._layout:
            self._show_rows()

    def _cells(self, row: RunRow, now: float, goals_width: int) -> dict[str, Text]:
        record = row.record
        theme = self.app.theme_variables
        text, color = STATE_MARKS.get(row.status, (row.status.value, "text"))
        end = record.ended_at or (now if row.status is history.RunStatus.RUNNING else None)
        # Goal names are the user's words: every cell is plain Text, never markup.
        goals = Text(
            "; ".join(
                f"{g.goal}: {short_counts(g.counts, 0) or g.state.lower()}" for g in row.goals
            )
            or "—"
        )
        goals.truncate(goals_width, overflow="ellipsis")
        mode = " ".join(m for m, on in (("dry", record.dry_run), ("full", record.full)) if on)
        return {
            "state": Text(text, style=theme.get(color, "")),
            "by": Text(record.started_by),
            "start": Text(short_time(record.started_at, now)),
            "took": Text(duration(end - record.started_at) if end else "—"),
            "goals": goals,
            "dp": Text(f"{sum(g.data_points for g in row.goals):,}", justify="right"),
            "mode": Text(mode),
        }

    @on(RunsLoaded)
    def _loaded(self, message: RunsLoaded) -> None:
        if message.connection != self.connection:
            return
        self._show_rows(message.rows)

    def _show_rows(self, rows: list[RunRow] | None = None) -> None:
        """Show `rows` (else the rows shown, e.g. at a new width), touching only what changed
        and keeping the highlighted run highlighted."""
        table = self.table
        selected = self.selected()  # before self.rows changes under the cursor
        if rows is not None:
            self.rows = rows
            self.loaded = True
        layout = self._wanted_layout()
        keys, goals_width = layout
        if layout != self._layout:
            self._layout = layout
            self._shown = []
            table.clear(columns=True)
            for key in keys:
                label, width = COLUMNS[key]
                table.add_column(label, key=key, width=width or goals_width)
        now = self.bctui.clock()
        shown = [
            (r.record.id, tuple(self._cells(r, now, goals_width)[k] for k in keys))
            for r in self.rows
        ]
        if [i for i, _ in shown] == [i for i, _ in self._shown]:
            for (run_id, cells), (_, before) in zip(shown, self._shown, strict=True):
                for key, cell, old in zip(keys, cells, before, strict=True):
                    if cell != old:
                        table.update_cell(run_id, key, cell)
        else:
            table.clear()
            for run_id, cells in shown:
                table.add_row(*cells, key=run_id)
            ids = [i for i, _ in shown]
            if selected is not None and selected.record.id in ids:
                table.move_cursor(row=ids.index(selected.record.id), animate=False)
        self._shown = shown
        empty = self.query_one("#history-empty", Label)
        empty.display = self.loaded and not self.rows
        empty.update("No runs yet: r on the connections list runs it now.")

    def selected(self) -> RunRow | None:
        """The highlighted run."""
        row = self.table.cursor_row
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
